"""Token healing in the local backend: the prompt's last token is taken back and the model spells it again.

StarCoder-family tokenizers merge a line break with the indentation after it,
and a space with the word after it: four-space-indented ``return`` is
``"\\n   "`` + ``" return"``. A prompt that ends on bare indentation ends on
``"\\n    "``, a token the model rarely saw before code. Healing takes that
token back and, until the model's tokens have given its text back, lets it
choose only tokens *consistent* with it: those that begin with what is left
of it (``"\\n    "`` itself, ``"\\n        "``) and those that are a beginning
of it (``"\\n   "``, after which ``" return"`` may come).

Allowing only the tokens that begin with it, as single-token healing does,
leaves the model no way to write the spelling it knows, and it takes the
nearest one it may: one indentation level deeper. On nano-starcoder every fill
after bare indentation came back four spaces too deep that way.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

import torch
from transformers import LogitsProcessor


class TokenTexts:
    """Every text token's text (special tokens and parts of characters left out), for healing's
    searches: made once per model, before any request."""

    def __init__(self, tokenizer: Any, special_ids: set[int]):
        pieces = ((tokenizer.decode([i]), i) for i in range(len(tokenizer)) if i not in special_ids)
        self._sorted = sorted((piece, i) for piece, i in pieces if piece and "\ufffd" not in piece)
        self._ids: defaultdict[str, list[int]] = defaultdict(list)
        self.length = [0] * len(tokenizer)  # each token's text's length (0: not a text token)
        for piece, token_id in self._sorted:
            self._ids[piece].append(token_id)
            self.length[token_id] = len(piece)

    def extending(self, text: str, limit: int | None = None) -> list[int]:
        """The tokens whose text begins with ``text`` (the first ``limit`` of them, if given)."""
        start = bisect.bisect_left(self._sorted, (text, -1))
        found: list[int] = []
        for piece, token_id in self._sorted[start:]:
            if not piece.startswith(text) or len(found) == limit:
                break
            found.append(token_id)
        return found

    def respellable(self, text: str) -> bool:
        """Whether some other token is consistent with ``text``: a longer one, or one that is a beginning
        of it. (Cheap, unlike ``consistent``: after a space, thousands of tokens are.)"""
        return len(self.extending(text, limit=2)) == 2 or any(text[:end] in self._ids for end in range(1, len(text)))

    def consistent(self, text: str) -> list[int]:
        """The tokens a spelling of ``text`` may begin with: those that begin with it, and those whose
        text is a shorter beginning of it."""
        shorter = (self._ids.get(text[:end], []) for end in range(1, len(text)))
        return self.extending(text) + [token_id for ids in shorter for token_id in ids]


class Healer(LogitsProcessor):
    """While a sequence has not given ``text`` back, only tokens consistent with what is left of it can be
    chosen. After the weigher, so the numbers reported for those tokens are the model's own."""

    def __init__(self, text: str, texts: TokenTexts, prompt_length: int) -> None:
        self.text, self.texts, self.prompt_length = text, texts, prompt_length
        self.given: list[int] | None = None  # per sequence: how many characters of ``text`` it has given back
        self.done = False
        self._masks: dict[int, torch.Tensor] = {}  # by characters given back: what the step may choose

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.given is None:
            self.given = [0] * input_ids.shape[0]
        elif self.done:  # every sequence has given the text back: nothing left to do on this hot path
            return scores
        else:
            for row, token_id in enumerate(input_ids[:, -1].tolist()):
                if self.given[row] < len(self.text):
                    self.given[row] += self.texts.length[token_id]
        pending = [(row, given) for row, given in enumerate(self.given) if given < len(self.text)]
        self.done = not pending
        for row, given in pending:
            scores[row] += self._mask(given, scores)
        return scores

    def _mask(self, given: int, scores: torch.Tensor) -> torch.Tensor:
        mask = self._masks.get(given)
        if mask is None:
            mask = torch.full(scores.shape[1:], -float("inf"), dtype=scores.dtype, device=scores.device)
            mask[self.texts.consistent(self.text[given:])] = 0
            self._masks[given] = mask
        return mask
