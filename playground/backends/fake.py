"""A scripted backend for tests and offline demos, shipped beside the real ones.

It streams queued outputs piece by piece, honours cancel and max_new_tokens
the way the real backends do, and records every request it was given, so a
test can assert on the exact prompt and parameters the app sent.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from playground.backends.base import BackendInfo, Chunk, EventStream, Finished, FinishReason
from playground.errors import BackendError
from playground.params import GenerationParams
from playground.prompt import Prompt

_PIECES = re.compile(r"\s*\S+|\s+")  # "tokens": words with their leading whitespace


@dataclass
class FakeRequest:
    prompt: Prompt
    params: GenerationParams
    cancelled: bool = False


@dataclass
class FakeBackend:
    model_id: str = "fake"
    context_length: int = 2048
    outputs: list[str] = field(default_factory=list)  # consumed in order; empty: echo a default reply
    delay_s: float = 0.0  # between pieces, to make streaming and cancellation observable
    end_with_eos: bool = True  # False: behave like a model that never stops (hits max_new_tokens)
    fail_with: BackendError | None = None  # raised before the first piece
    fail_after: int | None = None  # pieces before a mid-stream failure
    requests: list[FakeRequest] = field(default_factory=list)

    def info(self) -> BackendInfo:
        return BackendInfo(model_id=self.model_id, backend="fake", context_length=self.context_length, loaded=True)

    def count_tokens(self, prompt: Prompt) -> int:
        return len(_PIECES.findall(prompt.render()))

    def render(self, prompt: Prompt) -> str:
        return prompt.render()

    def stream(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> EventStream:
        request = FakeRequest(prompt, params)
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        output = self.outputs.pop(0) if self.outputs else "def hello():\n    return 'world'\n"
        pieces = _PIECES.findall(output)
        prompt_tokens = self.count_tokens(prompt)
        for count, piece in enumerate(pieces[: params.max_new_tokens], start=1):
            if cancel.is_set():
                request.cancelled = True
                yield Finished("cancelled", prompt_tokens, count - 1)
                return
            if self.fail_after is not None and count > self.fail_after:
                yield Finished("error", prompt_tokens, count - 1, error="The fake engine failed midway.")
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            yield Chunk(piece)
        done = min(len(pieces), params.max_new_tokens)
        reason: FinishReason = "eos" if self.end_with_eos and len(pieces) <= params.max_new_tokens else "length"
        yield Finished(reason, prompt_tokens, done)

    def close(self) -> None:
        pass
