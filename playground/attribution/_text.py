"""Text primitives shared by building and matching: newlines, window hashes, verbatim extension.

Line endings are the one thing not compared verbatim: CRLF and lone CR become
LF on both sides, so a copy of a Windows-authored file is still found and line
numbers count real lines. Everything else (tabs, trailing spaces, Unicode) is
compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import xxhash

_HALF = 1 << 63
_GALLOP_START = 64  # first slice length tried when extending; most matches are a few lines


def normalize_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class NormalizedText:
    """A text with LF line endings, and where each of its chars came from in the original.

    ``origin[k]`` is the original index of normalized char ``k``; ``origin[len(text)]``
    is the original length, so a normalized span [s, e) is [origin[s], origin[e]).
    ``origin`` is None when nothing changed (the common case), to save the list.
    """

    text: str
    origin: list[int] | None

    @classmethod
    def of(cls, original: str) -> NormalizedText:
        if "\r" not in original:
            return cls(original, None)
        chars: list[str] = []
        origin: list[int] = []
        index, length = 0, len(original)
        while index < length:
            char = original[index]
            origin.append(index)
            if char == "\r":
                chars.append("\n")
                index += 2 if original.startswith("\n", index + 1) else 1
            else:
                chars.append(char)
                index += 1
        origin.append(length)
        return cls("".join(chars), origin)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end]


def window_hashes(text: str, window: int, step: int = 1) -> list[int]:
    """Fingerprints of the whole windows ``text[i : i + window]`` for i = 0, step, 2 * step, ...

    xxh3 of the UTF-8 bytes, minus 2**63: SQLite integers are signed, and the
    shift keeps the order of the unsigned hashes. Corpus windows use
    ``step=window``; a checked text uses every offset.
    """
    xxh3 = xxhash.xxh3_64_intdigest
    stop = len(text) - window + 1
    if text.isascii():  # most code: slicing bytes once encoded beats encoding every slice
        data = text.encode("ascii")
        return [xxh3(data[i : i + window]) - _HALF for i in range(0, stop, step)]
    return [xxh3(text[i : i + window].encode("utf-8", "surrogatepass")) - _HALF for i in range(0, stop, step)]


def common_prefix(a: str, i: int, b: str, j: int) -> int:
    """Length of the longest common prefix of ``a[i:]`` and ``b[j:]``.

    Slices are compared in C: doubling lengths until a mismatch, then a binary
    search, so the cost grows with the match, not with the documents.
    """
    limit = min(len(a) - i, len(b) - j)
    equal, step = 0, _GALLOP_START
    while equal < limit:
        upto = min(equal + step, limit)
        if a[i + equal : i + upto] != b[j + equal : j + upto]:
            return _bisect_prefix(a, i, b, j, equal, upto)
        equal, step = upto, step * 2
    return limit


def _bisect_prefix(a: str, i: int, b: str, j: int, equal: int, unequal: int) -> int:
    # Invariant: the first ``equal`` chars agree, the first ``unequal`` do not.
    while unequal - equal > 1:
        middle = (equal + unequal) // 2
        if a[i + equal : i + middle] == b[j + equal : j + middle]:
            equal = middle
        else:
            unequal = middle
    return equal


def common_suffix(a: str, i: int, b: str, j: int) -> int:
    """Length of the longest common suffix of ``a[:i]`` and ``b[:j]``."""
    limit = min(i, j)
    equal, step = 0, _GALLOP_START
    while equal < limit:
        upto = min(equal + step, limit)
        if a[i - upto : i - equal] != b[j - upto : j - equal]:
            return _bisect_suffix(a, i, b, j, equal, upto)
        equal, step = upto, step * 2
    return limit


def _bisect_suffix(a: str, i: int, b: str, j: int, equal: int, unequal: int) -> int:
    while unequal - equal > 1:
        middle = (equal + unequal) // 2
        if a[i - middle : i - equal] == b[j - middle : j - equal]:
            equal = middle
        else:
            unequal = middle
    return equal


def line_range(text: str, start: int, end: int) -> tuple[int, int]:
    """1-based first and last line of the non-empty span ``text[start:end]`` (LF line endings)."""
    first = text.count("\n", 0, start) + 1
    return first, first + text.count("\n", start, end - 1)
