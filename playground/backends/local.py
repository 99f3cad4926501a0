"""The in-process backend: transformers ``generate`` on a thread, streamed token by token.

Why not ``TextIteratorStreamer``: it re-decodes the whole text per token and
costs 10-13 % throughput. Here the generate thread pushes token ids into a
queue and the consumer decodes incrementally, so streaming stays within a few
percent of raw ``generate``. A StoppingCriteria reads the cancel event, so
Stop frees the model at the next token instead of after max_new_tokens.

Token log-probabilities are read from the distribution the token was drawn
from, taken after the penalties and before the sampling warpers (a logits
processor of ours runs between the two; transformers applies custom
processors before its warpers). So the numbers are the
model's own view of the text, alternatives the sampler cut off still show,
and under greedy decoding the chosen token is always the top alternative.
Several candidates (``params.n``) come from one batched ``generate``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from playground.backends.base import Alternative, BackendInfo, Chunk, EventStream, Finished, FinishReason, TokenInfo
from playground.backends.wire import GENERATE
from playground.errors import GenerationFailedError, PromptTooLongError
from playground.loading import LoadedModel
from playground.params import PARAMS, GenerationParams
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


class _Weigher(LogitsProcessor):
    """Keeps the log-probabilities of the step being sampled; the streamer reads them once the token
    is chosen. Placed by transformers after its penalties and before its sampling warpers."""

    def __init__(self) -> None:
        self.logprobs: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.logprobs = torch.log_softmax(scores.float(), dim=-1)
        return scores


class _Forbid(LogitsProcessor):
    """Never samples these tokens; after the weigher, so reported log-probabilities stay the model's own."""

    def __init__(self, token_ids: list[int]) -> None:
        self.token_ids = token_ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores[:, self.token_ids] = -float("inf")
        return scores


# One generation step as the consumer reads it: per sequence, (token id, log-probability, top [(id, lp)]).
Step = list[tuple[int, float | None, list[tuple[int, float]]]]


class _TokenQueue:
    """The streamer ``generate`` calls: the first put is the prompt, later puts are new token ids.

    Without a weigher each step is a bare id (the fast path of a plain generation); with one, a Step.
    """

    def __init__(self, weigher: _Weigher | None = None, alternatives: int = 0) -> None:
        # SimpleQueue: a put per token, and Queue's condition variable cost ~8 % of the engine's GIL (profiled).
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prompt_seen = False
        self._weigher = weigher
        self._alternatives = alternatives  # the best tokens listed beside each chosen one

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self._weigher is None or self._weigher.logprobs is None:
            self.queue.put(int(value.reshape(-1)[0]))
            return
        ids = value.reshape(-1).to(self._weigher.logprobs.device)
        logprobs = self._weigher.logprobs
        chosen = logprobs.gather(1, ids.unsqueeze(1)).squeeze(1).tolist()
        if self._alternatives:
            values, indices = logprobs.topk(self._alternatives, dim=-1)
            tops = [list(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]
        else:
            tops = [[] for _ in chosen]
        self.queue.put(list(zip(ids.tolist(), chosen, tops, strict=True)))

    def end(self) -> None:
        pass  # the thread wrapper puts _END itself, also when generate raises


class _StepRecorder(_TokenQueue):
    """The streamer for several candidates, which are ranked only at the end: each step's tensors are
    kept as they are, and turned into Steps once ``generate`` returns. Nothing per step crosses to the
    consumer's thread, so no Python there competes with the batched model for the interpreter."""

    def __init__(self, weigher: _Weigher | None = None, alternatives: int = 0) -> None:
        super().__init__(weigher, alternatives)
        self._ids: list[torch.Tensor] = []
        self._chosen: list[torch.Tensor] = []
        self._tops: list[tuple[torch.Tensor, torch.Tensor]] = []

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        ids = value.reshape(-1)
        self._ids.append(ids)
        logprobs = self._weigher.logprobs if self._weigher is not None else None
        if logprobs is not None:
            self._chosen.append(logprobs.gather(1, ids.to(logprobs.device).unsqueeze(1)).squeeze(1))
            if self._alternatives:
                self._tops.append(logprobs.topk(self._alternatives, dim=-1))

    def steps(self) -> list[Step]:
        if not self._ids:
            return []
        ids = torch.stack(self._ids).tolist()
        chosen = torch.stack(self._chosen).tolist() if self._chosen else [[None] * len(row) for row in ids]
        if self._tops:
            values = torch.stack([v for v, _ in self._tops]).tolist()
            indices = torch.stack([i for _, i in self._tops]).tolist()
            tops = [[list(zip(i, v, strict=True)) for i, v in zip(ri, rv, strict=True)]
                    for ri, rv in zip(indices, values, strict=True)]
        else:
            tops = [[[] for _ in row] for row in ids]
        return [list(zip(*columns, strict=True)) for columns in zip(ids, chosen, tops, strict=True)]


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


class _Sequence:
    """One of the sequences a generate call writes: its decoder, its pending tokens, how it ended."""

    def __init__(self, decoder: IncrementalDecoder, backend: LocalBackend):
        self.decoder, self.backend = decoder, backend
        self.pending: list[TokenInfo] = []  # tokens whose text is not out yet (part of a character)
        self.count, self.ended, self.emitted = 0, False, False

    def push(self, token_id: int, logprob: float | None, top: list[tuple[int, float]]) -> Chunk | None:
        if self.ended:  # a finished sequence in a batch is padded until the others end
            return None
        self.count += 1
        self.ended = token_id in self.backend.eos_ids
        text = self.decoder.push(token_id)
        # Special tokens (an end of text, a stray <fim_middle>) have no text: they are not listed.
        if logprob is not None and token_id not in self.backend.special_ids:
            alternatives = tuple(self.backend.alternative(i, lp) for i, lp in top)
            self.pending.append(TokenInfo(text, logprob, alternatives))
        if not text:
            return None
        self.emitted = True
        details, self.pending = tuple(self.pending), []
        return Chunk(text, details=details)

    def flush(self) -> Chunk | None:
        """Text held back at the end (an unfinished character), with the tokens behind it."""
        tail = self.decoder.flush()
        if not tail:
            return None
        details = self.pending
        if details:
            details[-1] = TokenInfo(tail, details[-1].logprob, details[-1].top)
        self.pending = []
        return Chunk(tail, details=tuple(details))

    def reason(self, cancel: threading.Event) -> FinishReason:
        if self.ended:
            return "eos"
        return "cancelled" if cancel.is_set() else "length"


class LocalBackend:
    """One generation at a time per model: the lock serialises callers that bypass the UI queue."""

    def __init__(self, loaded: LoadedModel):
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
        self._forbid = _Forbid(sorted(sentinels)) if sentinels else None
        self._device = next(self.model.parameters()).device
        self._pieces: dict[int, str] = {}

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
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.eos_ids[0] if self.eos_ids else None,
            "do_sample": not params.greedy,
        }
        # Every knob gets a value (None clears it), so the model's own generation_config defaults never apply;
        # greedy clears the sampling knobs, which transformers would otherwise warn are unused.
        knobs = params.knobs()
        for knob, row in GENERATE.items():
            kwargs[row.name] = None if params.greedy and PARAMS[knob].knob == "sampling" else knobs.get(knob, row.off)
        return kwargs

    def _generate(
        self, input_ids: list[int], max_new: int, params: GenerationParams, cancel: threading.Event
    ) -> EventStream:
        weigher = _Weigher() if params.wants_logprobs else None
        streamer = (_StepRecorder if params.n > 1 else _TokenQueue)(weigher, params.logprobs)
        kwargs = self._generate_kwargs(input_ids, max_new, params)
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_CancelCriteria(cancel)]))
        processors = [p for p in (weigher, self._forbid) if p is not None]
        if processors:
            kwargs["logits_processor"] = LogitsProcessorList(processors)
        if params.n > 1:
            kwargs["num_return_sequences"] = params.n  # one batched generate, not n in a row
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
        sequences = [_Sequence(IncrementalDecoder(self.tokenizer, self.special_ids), self) for _ in range(params.n)]
        thread.start()
        try:
            while (item := self._next(streamer, cancel)) is not _END:
                yield from self._step(sequences, [(item, None, [])] if isinstance(item, int) else item)
            if isinstance(streamer, _StepRecorder):  # several candidates: decoded now, all at once
                for step in streamer.steps():
                    yield from self._step(sequences, step)
            for index, sequence in enumerate(sequences):
                tail = sequence.flush()
                if tail is not None:
                    yield Chunk(tail.text, 0, tail.details, index)
        finally:
            if thread.is_alive():
                cancel.set()  # the consumer went away (client closed): stop the model too
            thread.join()
        completion = sum(s.count for s in sequences)
        if failure:  # the detail is in the log (see run); users get what to do about it
            if not any(s.emitted for s in sequences):
                raise GenerationFailedError(_FAILED)
            yield Finished("error", len(input_ids), completion, error=_FAILED_MIDWAY)
            return
        reasons = tuple(s.reason(cancel) for s in sequences)
        yield Finished(reasons[0], len(input_ids), completion, reasons=reasons if params.n > 1 else ())

    @staticmethod
    def _step(sequences: list[_Sequence], step: Step) -> Iterator[Chunk]:
        for index, (token_id, logprob, top) in enumerate(step):
            chunk = sequences[index].push(token_id, logprob, top)
            if chunk is not None:
                yield chunk if index == 0 else Chunk(chunk.text, chunk.tokens, chunk.details, index)

    @staticmethod
    def _next(streamer: _TokenQueue, cancel: threading.Event) -> Any:
        try:
            return streamer.queue.get(timeout=_CONSUMER_TIMEOUT_S)
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
