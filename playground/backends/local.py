"""The in-process backend: transformers ``generate`` on a thread, streamed token by token.

Why not ``TextIteratorStreamer``: it re-decodes the whole text per token and
costs 10-13 % throughput. Here the generate thread pushes token ids into a
queue and the consumer decodes incrementally, so streaming stays within a few
percent of raw ``generate``. A StoppingCriteria reads the cancel event, so
Stop frees the model at the next token instead of after max_new_tokens.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from playground.backends.base import BackendInfo, Chunk, EventStream, Finished, FinishReason
from playground.errors import GenerationFailedError, PromptTooLongError
from playground.loading import LoadedModel
from playground.params import GenerationParams
from playground.prompt import Prompt, Special, Text

log = logging.getLogger("playground.backends.local")

_END = object()  # sentinel the generate thread puts when it returns
_CONSUMER_TIMEOUT_S = 120.0  # a generate thread silent this long is dead; never hang a request on it


class _CancelCriteria(StoppingCriteria):
    def __init__(self, cancel: threading.Event):
        self.cancel = cancel

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        flags = torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)
        return flags  # type: ignore[return-value]  # transformers annotates BoolTensor, a legacy alias


class _TokenQueue:
    """The streamer ``generate`` calls: the first put is the prompt, later puts are new token ids."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.queue.put(int(value.reshape(-1)[0]))

    def end(self) -> None:
        pass  # the thread wrapper puts _END itself, also when generate raises


class IncrementalDecoder:
    """Decode a growing id list into text deltas without re-decoding everything.

    Holds back text ending in U+FFFD (a multi-byte character split across
    tokens) until the next token completes it. Special tokens never become text.
    """

    def __init__(self, tokenizer: Any, special_ids: set[int]):
        self.tokenizer = tokenizer
        self.special_ids = special_ids
        self.ids: list[int] = []
        self.prefix_offset = 0  # decode from here so leading-space rules match the real context
        self.read_offset = 0  # text of ids before this is already emitted

    def push(self, token_id: int) -> str:
        if token_id in self.special_ids:
            return ""
        self.ids.append(token_id)
        prefix_text = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset])
        new_text = self.tokenizer.decode(self.ids[self.prefix_offset :])
        if new_text.endswith("\ufffd") or len(new_text) <= len(prefix_text):
            return ""
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        prefix_text = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset])
        rest = self.tokenizer.decode(self.ids[self.prefix_offset :])[len(prefix_text) :]
        self.prefix_offset = self.read_offset = len(self.ids)
        return rest


class LocalBackend:
    """One generation at a time per model: the lock serialises callers that bypass the UI queue."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.spec = loaded.spec
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self._lock = threading.Lock()
        vocab = self.tokenizer.get_vocab()
        self._special_ids = {vocab[t] for t in self.spec.special_tokens() if t in vocab}
        self._special_ids.update(getattr(self.tokenizer, "all_special_ids", []) or [])
        ends = (self.spec.end_of_text, *self.spec.stop_tokens)
        self._eos_ids = sorted({vocab[t] for t in ends if t in vocab})
        self._device = next(self.model.parameters()).device

    def info(self) -> BackendInfo:
        plan = self.loaded.plan
        return BackendInfo(
            model_id=self.spec.id,
            backend="local",
            context_length=self.spec.context_length,
            loaded=True,
            dtype=plan.dtype,
            quantization=None if self.loaded.quantization == "none" else self.loaded.quantization,
            revision=self.loaded.revision,
            device_map={k: str(v) for k, v in plan.device_map.items()},
            placement=plan.to_dict(),
        )

    def encode(self, prompt: Prompt) -> list[int]:
        """Text segments as plain text (typed special-token spellings stay text); Specials as their ids."""
        ids: list[int] = []
        pending: list[str] = []
        for segment in (*prompt.segments, None):
            if isinstance(segment, Text):
                pending.append(segment.text)
                continue
            if pending:
                ids.extend(
                    self.tokenizer("".join(pending), add_special_tokens=False, split_special_tokens=True)["input_ids"]
                )
                pending = []
            if isinstance(segment, Special):
                token_id = self.tokenizer.convert_tokens_to_ids(segment.token)
                unknown = token_id == self.tokenizer.unk_token_id and segment.token != self.tokenizer.unk_token
                if token_id is None or unknown:
                    raise GenerationFailedError(
                        f"{self.spec.id} has no {segment.token} token, so this mode cannot run on it. "
                        "Pick another model."
                    )
                ids.append(token_id)
        return ids

    def count_tokens(self, prompt: Prompt) -> int:
        return len(self.encode(prompt))

    def render(self, prompt: Prompt) -> str:
        return prompt.render()  # specials become their ids and user text stays text, whatever it spells

    def stream(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> EventStream:
        input_ids = self.encode(prompt)
        room = self.spec.context_length - len(input_ids)
        if room < 1:
            raise PromptTooLongError(
                f"The prompt is {len(input_ids)} tokens and {self.spec.id} reads at most "
                f"{self.spec.context_length}. Shorten the input."
            )
        max_new = min(params.max_new_tokens, room)
        with self._lock:
            yield from self._generate(input_ids, max_new, params, cancel)

    def _generate_kwargs(self, input_ids: list[int], max_new: int, params: GenerationParams) -> dict[str, Any]:
        tensor = torch.tensor([input_ids], device=self._device)
        kwargs: dict[str, Any] = {
            "input_ids": tensor,
            "attention_mask": torch.ones_like(tensor),
            "max_new_tokens": max_new,
            "min_new_tokens": 0,
            "eos_token_id": self._eos_ids,
            "pad_token_id": self._eos_ids[0] if self._eos_ids else None,
            "repetition_penalty": params.repetition_penalty,
            "do_sample": not params.greedy,
        }
        if params.greedy:
            # Explicit neutral values: otherwise generation_config's sampling defaults warn and linger.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        return kwargs

    def _generate(
        self, input_ids: list[int], max_new: int, params: GenerationParams, cancel: threading.Event
    ) -> EventStream:
        streamer = _TokenQueue()
        kwargs = self._generate_kwargs(input_ids, max_new, params)
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_CancelCriteria(cancel)]))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                torch.manual_seed(params.seed if params.seed is not None else 0)
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported to the consumer, never lost
                failure.append(exc)
                log.exception("generate failed")
            finally:
                streamer.queue.put(_END)

        thread = threading.Thread(target=run, name="local-generate", daemon=True)
        decoder = IncrementalDecoder(self.tokenizer, self._special_ids)
        completion, last_id, emitted = 0, None, False
        thread.start()
        try:
            while True:
                try:
                    token_id = streamer.queue.get(timeout=_CONSUMER_TIMEOUT_S)
                except queue.Empty:
                    cancel.set()
                    raise GenerationFailedError(
                        "The model stopped responding. Try again; if it repeats, restart the app."
                    ) from None
                if token_id is _END:
                    break
                completion += 1
                last_id = token_id
                text = decoder.push(token_id)
                if text:
                    emitted = True
                    yield Chunk(text)
            tail = decoder.flush()
            if tail:
                yield Chunk(tail)
        finally:
            if thread.is_alive():
                cancel.set()  # the consumer went away (client closed): stop the model too
            thread.join()
        if failure:  # the detail is in the log (see run); users get what to do about it
            if not emitted:
                raise GenerationFailedError(_FAILED)
            yield Finished("error", len(input_ids), completion, error=_FAILED_MIDWAY)
            return
        reason: FinishReason
        if cancel.is_set():
            reason = "cancelled"
        elif last_id is not None and last_id in self._eos_ids:
            reason = "eos"
        else:
            reason = "length"
        yield Finished(reason, len(input_ids), completion)

    def close(self) -> None:
        pass


_FAILED = ("The model failed while generating (the server log has the detail). "
           "Try again with a shorter input or fewer tokens; if it repeats, report it with the time.")
_FAILED_MIDWAY = "The model failed midway (the server log has the detail); the output is incomplete. Try again."
