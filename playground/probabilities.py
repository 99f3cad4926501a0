"""Token probabilities and candidates: what the model weighed, lined up with the text the user sees.

Backends hand over the tokens behind each chunk of raw text (``TokenInfo``).
What a user sees is a slice of that raw text: cut at a stop sequence, the
fill middle before a repeat of the code after the hole, a chat reply without
its surrounding whitespace. ``TokenTrack`` keeps the tokens with their
offsets in the raw text, so any such slice gets exactly the tokens behind it;
a token cut by the slice keeps its log-probability and loses the cut-off
characters, so the token texts always join into the text.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import replace

from playground.backends.base import TokenInfo
from playground.record import DIGITS as _DIGITS
from playground.record import Candidate


class TokenTrack:
    """The tokens of one raw text, in order, each with where it ends in that text."""

    def __init__(self) -> None:
        self.tokens: list[TokenInfo] = []
        self.ends: list[int] = []
        self.length = 0  # characters of raw text covered so far
        self.complete = True  # False once a chunk came without its tokens: no slice can be trusted
        self._held = 0.0  # log-probability of tokens that ended inside a multi-byte character

    def add(self, text: str, details: Sequence[TokenInfo]) -> None:
        """The tokens behind one chunk of raw text."""
        if not text and not details:
            return
        joined = "".join(t.text for t in details)
        if joined != text:
            if not joined.startswith(text):
                self.complete = False  # an engine whose token texts do not add up to its text
                return
            # An engine that cut its text at a stop sequence but kept the last token whole.
            details = _clipped(details, len(text))
        for token in details:
            if not token.text:  # part of a character (or an end-of-text): counted with what follows
                self._held += token.logprob
                continue
            if self._held:
                token = TokenInfo(token.text, token.logprob + self._held, token.top)
                self._held = 0.0
            self.tokens.append(token)
            self.length += len(token.text)
            self.ends.append(self.length)

    def slice(self, start: int, end: int) -> list[TokenInfo]:
        """The tokens behind raw text ``[start, end)``, their texts clipped to it."""
        if end <= start:
            return []
        first = bisect.bisect_right(self.ends, start)
        out: list[TokenInfo] = []
        for index in range(first, len(self.tokens)):
            token = self.tokens[index]
            token_end = self.ends[index]
            token_start = token_end - len(token.text)
            if token_start >= end:
                break
            lo, hi = max(start, token_start) - token_start, min(end, token_end) - token_start
            out.append(token if (lo, hi) == (0, len(token.text)) else TokenInfo(token.text[lo:hi], token.logprob,
                                                                                  token.top))
        return out


def _clipped(details: Sequence[TokenInfo], length: int) -> list[TokenInfo]:
    out, used = [], 0
    for token in details:
        if used >= length:
            break
        piece = token.text[: length - used]
        out.append(token if piece == token.text else TokenInfo(piece, token.logprob, token.top))
        used += len(piece)
    return out


def mean_logprob(tokens: Sequence[TokenInfo]) -> float | None:
    """The mean log-probability per token; None for no tokens (an empty candidate has no score)."""
    values = [t.logprob for t in tokens if math.isfinite(t.logprob)]
    return round(sum(values) / len(values), _DIGITS) if values else None


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Identical texts merged (the first keeps its tokens), then best mean log-probability first.
    Ties keep the order of generation; candidates without a score come last."""
    merged: dict[str, Candidate] = {}
    for candidate in candidates:
        key = candidate.shown.text
        if key in merged:
            merged[key].count += candidate.count
        else:
            merged[key] = replace(candidate, tokens=list(candidate.tokens))
    order = list(merged.values())
    order.sort(key=lambda c: -math.inf if c.mean_logprob is None else c.mean_logprob, reverse=True)
    return order
