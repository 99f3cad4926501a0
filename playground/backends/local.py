"""The in-process backend: the model's own decode loop (``local_decode``), streamed token by token.

``generate_into`` runs the model on the calling thread: the engine process
calls it from its main thread, where torch runs at its full speed (on a fresh
Python thread the same generation ran slower on a 2-core
machine, about 1.2-1.4x slower in quiet runs; see README, Performance). Each step is decoded there and
its text handed on at once, so no second thread competes with the model for
the interpreter. ``stream`` is the same generation as a generator, run on a
worker thread, for the in-process engine (``--engine inprocess``).

Why not ``TextIteratorStreamer``: it re-decodes the whole text per token and
costs 10-13 % throughput; the decoding here is incremental. The loop reads
the cancel event every token, so Stop frees the model at the next token
instead of after max_new_tokens.

Token log-probabilities are read from the distribution the token was drawn
from, taken after the penalties and before the sampling warpers (a logits
processor of ours runs between the two, where ``generate`` also puts a
caller's processors). So the numbers are the model's own view of
the text, alternatives the sampler cut off still show, and under greedy
decoding the chosen token is always the top alternative. Several candidates
(``params.n``) are rows of one batch. With ``--compile on`` each decode step
runs compiled on a static cache (``local_compile``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import LogitsProcessor

from playground.backends.base import Alternative, BackendInfo, Chunk, Event, EventStream, Finished
from playground.backends.local_compile import CompiledSteps
from playground.backends.local_decode import decode, processors
from playground.backends.local_healing import Healer, TokenTexts
from playground.backends.local_steps import (
    Forbid,
    IncrementalDecoder,
    NotEmpty,
    Sequence,
    Step,
    StepRecorder,
    TokenSink,
    Weigher,
    blank_tokens,
)
from playground.errors import GenerationFailedError, PromptTooLongError
from playground.loading import LoadedModel
from playground.params import GenerationParams
from playground.prompt import Prompt, Special, Text

log = logging.getLogger("playground.backends.local")

_END = object()  # sentinel the worker thread of ``stream`` puts when the generation is over
_CONSUMER_TIMEOUT_S = 120.0  # a generation silent this long is dead; never hang a request on it
Emit = Callable[[Event], None]


class _Discard:
    """A sink for the compile warm-up's tokens."""

    def put(self, value: torch.Tensor) -> None:
        pass


@dataclass(frozen=True)
class Healing:
    """Token healing for one prompt: the text of the token taken back (the last of the text the model
    continues) and where it stood in the prompt's ids."""

    text: str
    position: int


class LocalBackend:
    """One generation at a time per model: the lock serialises callers that bypass the UI queue."""

    def __init__(self, loaded: LoadedModel, *, compile_steps: bool = False):
        self.loaded = loaded
        self.spec = loaded.spec
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self._lock = threading.Lock()
        vocab = self.tokenizer.get_vocab()
        self.special_ids = {vocab[t] for t in self.spec.special_tokens() if t in vocab}
        self.special_ids.update(getattr(self.tokenizer, "all_special_ids", []) or [])
        ends = (self.spec.end_of_text, *self.spec.stop_tokens)
        self.eos_ids = sorted({vocab[t] for t in ends if t in vocab})
        # No answer in any mode holds a FIM sentinel, though a small model may write one (nano-starcoder v4 and v5 do).
        sentinels = {vocab[t] for t in (self.spec.fim.all() if self.spec.fim else ()) if t in vocab} - set(self.eos_ids)
        self._forbid = Forbid(sorted(sentinels)) if sentinels else None
        self._blank = blank_tokens(self.tokenizer)
        self._device = next(self.model.parameters()).device
        self._pieces: dict[int, str] = {}
        self._texts = TokenTexts(self.tokenizer, self.special_ids)  # for token healing
        self._compiled = self._compile() if compile_steps else None

    def _compile(self) -> CompiledSteps | None:
        """The compiled decode step, with the graph a request at the default length needs (one row, its
        prompt and the default new tokens) built now, while the model loads, rather than in a user's first
        request. A model it cannot compile runs eagerly."""
        compiled = CompiledSteps(self.model, self.spec.context_length)
        ids = torch.tensor([self.encode(Prompt.of("def"))], device=self._device)
        length = min(ids.shape[1] + GenerationParams().max_new_tokens, self.spec.context_length)
        try:
            with torch.inference_mode():
                decode(self.model, ids, 3, processors(GenerationParams(temperature=0.0), []), greedy=True, end_ids=[],
                       pad_id=0, steps=_Discard(), cancel=threading.Event(), passes=compiled.passes(length))
        except Exception:  # noqa: BLE001 - compiling is an optimisation: without it the model still serves
            log.exception("torch.compile of the decode step failed; the model runs eagerly")
            return None
        return compiled

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
        """The generation as a generator on the caller's thread, the model on a worker thread."""
        input_ids, max_new = self._fit(prompt, params)
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        healing = self._healing(prompt, input_ids, params)
        not_empty = self._not_empty(prompt, params)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock:
                    self._run(input_ids, max_new, params, cancel, events.put, healing, not_empty)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the consumer's thread
                failure.append(exc)
            finally:
                events.put(_END)

        thread = threading.Thread(target=run, name="local-generate", daemon=True)
        thread.start()
        try:
            while (event := self._next(events, cancel)) is not _END:
                yield event
        finally:
            if thread.is_alive():
                cancel.set()  # the consumer went away (client closed): stop the model too
            thread.join()
        if failure:
            raise failure[0]

    def generate_into(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event, emit: Emit) -> None:
        """Run the model on the calling thread, handing each event to ``emit`` as it is made: Chunks,
        then one Finished. Raises (PlaygroundError) only before the first Chunk."""
        input_ids, max_new = self._fit(prompt, params)
        healing = self._healing(prompt, input_ids, params)
        with self._lock:
            self._run(input_ids, max_new, params, cancel, emit, healing, self._not_empty(prompt, params))

    def _fit(self, prompt: Prompt, params: GenerationParams) -> tuple[list[int], int]:
        """The prompt's ids and the new tokens that fit after them in the model's context."""
        input_ids = self.encode(prompt)
        room = self.spec.context_length - len(input_ids)
        if room < 1:
            raise PromptTooLongError(
                f"The prompt is {len(input_ids)} tokens and {self.spec.id} reads at most "
                f"{self.spec.context_length}. Shorten the input."
            )
        return input_ids, min(params.max_new_tokens, room)

    def _healing(self, prompt: Prompt, input_ids: list[int], params: GenerationParams) -> Healing | None:
        """What token healing takes back from the text the model continues, if anything: only a text
        token (never a special one) that the model could also spell another way. That text ends the
        prompt, or (a prefix-suffix-middle fill) stands before the suffix: its ids are then the ones
        before the suffix sentinel's, since text is tokenized up to each special token."""
        if not params.heal or prompt.resumed_text is None or prompt.resumes is None:
            return None
        resumes = prompt.resumes % len(prompt.segments)
        head = input_ids if resumes == len(prompt.segments) - 1 else self.encode(
            replace(prompt, segments=prompt.segments[: resumes + 1]))
        if len(head) < 2:
            return None
        last = head[-1]
        text = self.tokenizer.decode([last])
        if last in self.special_ids or not text or "\ufffd" in text:
            return None
        if not self._texts.respellable(text):  # nothing but the token itself: nothing to heal
            return None
        return Healing(text, len(head) - 1)

    def _not_empty(self, prompt: Prompt, params: GenerationParams) -> bool:
        """Whether this generation is a fill that may not come back empty (``no_empty_fill``)."""
        return params.no_empty_fill and self.spec.fim is not None and Special(self.spec.fim.middle) in prompt.segments

    def _run(self, input_ids: list[int], max_new: int, params: GenerationParams, cancel: threading.Event,
             emit: Emit, healing: Healing | None = None, not_empty: bool = False) -> None:
        healed = healing.text if healing else ""
        if healing:  # taken back: the first new token will stand for it
            input_ids = input_ids[: healing.position] + input_ids[healing.position + 1 :]
        sequences = [Sequence(IncrementalDecoder(self.tokenizer, self.special_ids), self, healed)
                     for _ in range(params.n)]

        def on_step(step: Step) -> None:
            for chunk in self._chunks(sequences, step):
                emit(chunk)

        weigher = Weigher() if params.wants_logprobs else None
        sink = (StepRecorder if params.n > 1 else TokenSink)(on_step, weigher, params.logprobs)
        scores = processors(params, self._processors(weigher, healing, not_empty, len(input_ids)))
        rows = torch.tensor([input_ids] * params.n, device=self._device)  # candidates: one batch, not n runs
        try:
            torch.manual_seed(params.seed if params.seed is not None else 0)
            with torch.inference_mode():
                decode(self.model, rows, max_new, scores, greedy=params.greedy, end_ids=self.eos_ids,
                       pad_id=self.eos_ids[0] if self.eos_ids else 0, steps=sink, cancel=cancel,
                       passes=self._compiled.passes(len(input_ids) + max_new) if self._compiled else None)
        except Exception as exc:  # the detail goes to the log; users get what to do about it
            log.exception("generation failed")
            if not any(s.emitted for s in sequences):
                raise GenerationFailedError(_FAILED) from exc
            emit(Finished("error", len(input_ids), sum(s.count for s in sequences), error=_FAILED_MIDWAY))
            return
        if isinstance(sink, StepRecorder):  # several candidates: decoded now, all at once
            for step in sink.steps():
                on_step(step)
        for index, sequence in enumerate(sequences):
            tail = sequence.flush()
            if tail is not None:
                emit(Chunk(tail.text, 0, tail.details, index))
        reasons = tuple(s.reason(cancel) for s in sequences)
        notices = (f"Token healing: the prompt's last token ({healed!r}) was taken back and the model's text "
                   "had to begin with it.",) if healed else ()
        emit(Finished(reasons[0], len(input_ids) + bool(healed), sum(s.count for s in sequences),
                      notices=notices, reasons=reasons if params.n > 1 else ()))

    def _processors(self, weigher: Weigher | None, healing: Healing | None, not_empty: bool,
                    prompt_length: int) -> list[LogitsProcessor]:
        """What shapes each step's scores, in order: the weigher first, so the probabilities reported
        are the model's own; then the constraints."""
        healer = Healer(healing.text, self._texts, prompt_length) if healing else None
        # A healed first token is whitespace (healing takes back only a line break or spaces), so the
        # no-empty rule checks it like any other.
        rule = NotEmpty(self.eos_ids, self._blank, prompt_length) if not_empty and self.eos_ids else None
        return [p for p in (weigher, healer, self._forbid, rule) if p is not None]

    @staticmethod
    def _chunks(sequences: list[Sequence], step: Step) -> Iterator[Chunk]:
        for index, (token_id, logprob, top) in enumerate(step):
            chunk = sequences[index].push(token_id, logprob, top)
            if chunk is not None:
                yield chunk if index == 0 else Chunk(chunk.text, chunk.tokens, chunk.details, index)

    @staticmethod
    def _next(events: queue.SimpleQueue[Any], cancel: threading.Event) -> Any:
        try:
            return events.get(timeout=_CONSUMER_TIMEOUT_S)
        except queue.Empty:
            cancel.set()
            raise GenerationFailedError(
                "The model stopped responding. Try again; if it repeats, restart the app."
            ) from None

    def alternative(self, token_id: int, logprob: float) -> Alternative:
        """A candidate token as text (special tokens spelled out), cached: the same ids recur."""
        text = self._pieces.get(token_id)
        if text is None:
            text = self._pieces[token_id] = self.tokenizer.decode([token_id])
        return Alternative(text, logprob)

    def close(self) -> None:
        pass


_FAILED = ("The model failed while generating (the server log has the detail). "
           "Try again with a shorter input or fewer tokens; if it repeats, report it with the time.")
_FAILED_MIDWAY = "The model failed midway (the server log has the detail); the output is incomplete. Try again."
