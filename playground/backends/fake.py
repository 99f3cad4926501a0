"""A scripted backend for tests and offline demos, shipped beside the real ones.

It streams queued outputs piece by piece, honours cancel and max_new_tokens
the way the real backends do, and records every request it was given, so a
test can assert on the exact prompt and parameters the app sent. Asked for
log-probabilities it gives scripted ones (``logprob_of``), with the chosen
piece first among its alternatives, as greedy decoding would; asked for
``n`` candidates it takes one queued output per candidate and interleaves them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.backends.base import Alternative, BackendInfo, Chunk, EventStream, Finished, FinishReason, TokenInfo
from playground.errors import BackendError
from playground.params import GenerationParams
from playground.prompt import Prompt

_PIECES = re.compile(r"\s*\S+|\s+")  # "tokens": words with their leading whitespace
DEFAULT_OUTPUT = "def hello():\n    return 'world'\n"


def scripted_logprob(position: int, piece: str) -> float:
    """The fake's default numbers: plainly made up, but varied and repeatable."""
    return -0.5 * (position % 4) - 0.01 * len(piece)


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
    logprob_of: Callable[[int, str], float] = scripted_logprob  # (position, piece) -> log-probability
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
        outputs = [self.outputs.pop(0) if self.outputs else DEFAULT_OUTPUT for _ in range(params.n)]
        pieces = [_PIECES.findall(output)[: params.max_new_tokens] for output in outputs]
        prompt_tokens = self.count_tokens(prompt)
        made = 0
        for position in range(max(map(len, pieces))):
            for index, own in enumerate(pieces):
                if position >= len(own):
                    continue
                if cancel.is_set():
                    request.cancelled = True
                    yield Finished("cancelled", prompt_tokens, made, reasons=_every("cancelled", params.n))
                    return
                if self.fail_after is not None and made >= self.fail_after:
                    yield Finished("error", prompt_tokens, made, error="The fake engine failed midway.",
                                   reasons=_every("error", params.n))
                    return
                if self.delay_s:
                    time.sleep(self.delay_s)
                made += 1
                yield Chunk(own[position], details=self._details(position, own[position], params), index=index)
        reasons = tuple(self._reason(output, params) for output in outputs)
        yield Finished(reasons[0], prompt_tokens, made, reasons=reasons if params.n > 1 else ())

    def _details(self, position: int, piece: str, params: GenerationParams) -> tuple[TokenInfo, ...]:
        if not params.wants_logprobs:
            return ()
        logprob = self.logprob_of(position, piece)
        top = [Alternative(piece, logprob), *(Alternative(f"<alt{k}>", logprob - k) for k in range(1, 5))]
        return (TokenInfo(piece, logprob, tuple(top[: params.logprobs])),)

    def _reason(self, output: str, params: GenerationParams) -> FinishReason:
        fits = len(_PIECES.findall(output)) <= params.max_new_tokens
        return "eos" if self.end_with_eos and fits else "length"

    def close(self) -> None:
        pass


def _every(reason: FinishReason, n: int) -> tuple[FinishReason, ...]:
    return (reason,) * n if n > 1 else ()
