"""What runs inside the decode loop: the log-probability weigher, forbidden tokens, the no-empty rule,
the sinks that hand each step on, and the incremental decoding of each sequence.

A sink is called on the thread that runs the model; it decodes the step and
passes the text on at once (see ``LocalBackend``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import torch
from transformers import LogitsProcessor

from playground.backends.base import Alternative, Chunk, FinishReason, TokenInfo


class Vocabulary(Protocol):
    """What a sequence needs to know of its model's tokens."""

    eos_ids: list[int]
    special_ids: set[int]

    def alternative(self, token_id: int, logprob: float) -> Alternative: ...


class Weigher(LogitsProcessor):
    """Keeps the log-probabilities of the step being sampled; the sink reads them once the token is
    chosen. Placed after the penalties and before the sampling warpers (``local_decode.processors``)."""

    def __init__(self) -> None:
        self.logprobs: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.logprobs = torch.log_softmax(scores.float(), dim=-1)
        return scores


class Forbid(LogitsProcessor):
    """Never samples these tokens; after the weigher, so reported log-probabilities stay the model's own."""

    def __init__(self, token_ids: list[int]) -> None:
        self.token_ids = token_ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores[:, self.token_ids] = -float("inf")
        return scores


class NotEmpty(LogitsProcessor):
    """A fill may not end before it writes something visible: the end tokens are out of sampling for
    each sequence until it has chosen a token whose text is not blank. Without it a model that cannot tell
    a middle's start from its end (in suffix-first order nothing marks where the prefix stops) may close
    the hole at once. After the weigher, so reported log-probabilities stay the model's own."""

    def __init__(self, end_ids: list[int], blank: torch.Tensor, prompt_length: int) -> None:
        self.end_ids, self.blank, self.prompt_length = end_ids, blank, prompt_length
        self.written: torch.Tensor | None = None  # per sequence: something visible chosen yet
        self.done = False
        self.ends = torch.tensor(end_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.written is None:  # the first step: the tables move to the model's device once
            self.written = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            self.blank = self.blank.to(input_ids.device)
            self.ends = torch.tensor(self.end_ids, device=scores.device)
        elif self.done:  # every sequence has written something: nothing left to do on this hot path
            return scores
        if input_ids.shape[1] > self.prompt_length:
            self.written |= ~self.blank[input_ids[:, -1]]
        self.done = bool(self.written.all())
        if not self.done:
            rows = (~self.written).nonzero().squeeze(1)
            scores[rows[:, None], self.ends] = -float("inf")
        return scores


def blank_tokens(tokenizer: Any) -> torch.Tensor:
    """For each token id, whether its text is empty or whitespace (a special token's spelling is not)."""
    texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    decoded = [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in texts]
    return torch.tensor([not text.strip() for text in decoded], dtype=torch.bool)


# One generation step as the consumer reads it: per sequence, (token id, log-probability, top [(id, lp)]).
Step = list[tuple[int, float | None, list[tuple[int, float]]]]


class TokenSink:
    """Where the decode loop puts each step's tokens: handed to ``sink`` as a Step at once, on the
    thread that runs the model, with their log-probabilities when the weigher kept them."""

    def __init__(self, sink: Callable[[Step], None], weigher: Weigher | None = None, alternatives: int = 0) -> None:
        self.sink = sink
        self._weigher = weigher
        self._alternatives = alternatives  # the best tokens listed beside each chosen one

    def put(self, value: torch.Tensor) -> None:
        if self._weigher is None or self._weigher.logprobs is None:
            self.sink([(int(value.reshape(-1)[0]), None, [])])
            return
        ids = value.reshape(-1).to(self._weigher.logprobs.device)
        logprobs = self._weigher.logprobs
        chosen = logprobs.gather(1, ids.unsqueeze(1)).squeeze(1).tolist()
        if self._alternatives:
            values, indices = logprobs.topk(self._alternatives, dim=-1)
            tops = [list(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]
        else:
            tops = [[] for _ in chosen]
        self.sink(list(zip(ids.tolist(), chosen, tops, strict=True)))


class StepRecorder(TokenSink):
    """The sink for several candidates, which are ranked only at the end: each step's tensors are
    kept as they are, and turned into Steps once the loop returns (no Python per step and
    candidate while the batched model runs)."""

    def __init__(self, sink: Callable[[Step], None], weigher: Weigher | None = None, alternatives: int = 0) -> None:
        super().__init__(sink, weigher, alternatives)
        self._ids: list[torch.Tensor] = []
        self._chosen: list[torch.Tensor] = []
        self._tops: list[tuple[torch.Tensor, torch.Tensor]] = []

    def put(self, value: torch.Tensor) -> None:
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


class Sequence:
    """One of the sequences a generation writes: its decoder, its pending tokens, how it ended."""

    def __init__(self, decoder: IncrementalDecoder, vocabulary: Vocabulary, healed: str = ""):
        self.decoder, self.vocabulary = decoder, vocabulary
        self.healed = healed  # text the prompt lost to token healing: the first token repeats it, unshown
        self.pending: list[TokenInfo] = []  # tokens whose text is not out yet (part of a character)
        self.count, self.ended, self.emitted = 0, False, False

    def push(self, token_id: int, logprob: float | None, top: list[tuple[int, float]]) -> Chunk | None:
        if self.ended:  # a finished sequence in a batch is padded until the others end
            return None
        self.count += 1
        self.ended = token_id in self.vocabulary.eos_ids
        text, healing = self.decoder.push(token_id), self.healed
        if healing:  # the healed token: its text goes on from the prompt, where the taken-back text still is
            text, self.healed = text[len(healing):], healing[len(text):]
        # Special tokens (an end of text, a stray <fim_middle>) have no text: they are not listed; neither is a
        # healed token that only gave the prompt's text back.
        if logprob is not None and token_id not in self.vocabulary.special_ids and (text or not healing):
            alternatives = tuple(self.vocabulary.alternative(i, lp) for i, lp in top)
            if healing:  # what else could have gone on from the prompt, as continuations of it
                alternatives = tuple(Alternative(a.text[len(healing):], a.logprob) for a in alternatives
                                     if a.text.startswith(healing) and len(a.text) > len(healing))
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
