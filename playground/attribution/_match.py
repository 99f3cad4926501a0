"""Finding verbatim spans: candidate windows, then alignments, then extension and exact verification.

The corpus side fingerprints windows at every multiple of w; the checked text
fingerprints a window at every offset. A verbatim span of 2w-1 chars or more
must contain one whole corpus window, so its hash is looked up for certain.
Each hit gives a document and an alignment (document offset minus text
offset); the span is then grown left and right by comparing the real texts, so
only text that is equal character for character is ever reported.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from playground.attribution._text import common_prefix, common_suffix, window_hashes


class Store(Protocol):
    """What matching needs from an index; one object serves one check, so it may cache texts."""

    @property
    def window(self) -> int: ...

    @property
    def max_postings(self) -> int: ...

    def lookup(self, hashes: Collection[int]) -> dict[int, list[int]]:
        """Window numbers for each hash present; more than ``max_postings`` means the list was cut."""
        ...

    def locate(self, window_number: int) -> tuple[int, int]:
        """(document id, char offset in that document) of a window number."""
        ...

    def texts(self, documents: Collection[int]) -> dict[int, str]:
        """LF-normalized texts of these documents."""
        ...


@dataclass(frozen=True)
class Span:
    """A verified span of the (normalized) checked text, and the documents that hold it."""

    start: int
    end: int
    document: int  # the first document holding it, by id
    document_start: int  # where the span starts in that document
    other_documents: int
    exact: bool  # False: other_documents may be an undercount


def find_spans(text: str, store: Store, min_chars: int) -> list[Span]:
    """Every maximal span of ``text`` of at least ``min_chars`` that occurs verbatim in a stored document."""
    window = store.window
    hashes = window_hashes(text, window)
    postings = store.lookup(set(hashes))
    offsets_by_hash: defaultdict[int, list[int]] = defaultdict(list)
    for offset, hash_ in enumerate(hashes):
        if hash_ in postings:
            offsets_by_hash[hash_].append(offset)
    alignments: dict[tuple[int, int], list[int]] = defaultdict(list)
    cut: list[int] = []  # text offsets whose window is boilerplate with a truncated posting list
    for hash_, offsets in offsets_by_hash.items():
        windows = postings[hash_]
        if len(windows) > store.max_postings:
            cut.extend(offsets)
        for number in windows:
            document, document_offset = store.locate(number)
            for offset in offsets:
                alignments[document, document_offset - offset].append(offset)
    texts = store.texts({document for document, _ in alignments})
    occurrences = _extend(text, texts, alignments, window, min_chars)
    return _maximal(occurrences, sorted(cut), window)


def _extend(text: str, texts: dict[int, str], alignments: dict[tuple[int, int], list[int]], window: int,
            min_chars: int) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(start, end) of each verified span -> [(document, start in document)], one per alignment."""
    found: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for (document, shift), offsets in alignments.items():
        source = texts[document]
        covered = -1
        for offset in sorted(offsets):
            if offset + window <= covered:
                continue  # this hit lies inside the span already grown on this alignment
            position = offset + shift
            right = common_prefix(text, offset, source, position)
            if right < window:
                continue  # a 64-bit hash collision: the windows differ
            left = common_suffix(text, offset, source, position)
            start, end = offset - left, offset + right
            covered = end
            if end - start >= min_chars:
                found[start, end].append((document, position - left))
    return found


def _maximal(found: dict[tuple[int, int], list[tuple[int, int]]], cut: list[int], window: int) -> list[Span]:
    """Drop spans inside a longer one; give each survivor its first document and a count of the others.

    Spans that only overlap stay separate: their union occurs in no one document.
    """
    spans: list[Span] = []
    reach = -1
    for start, end in sorted(found, key=lambda key: (key[0], -key[1])):
        if end <= reach:
            continue  # starts no earlier and ends no later than a span already kept
        reach = end
        document, document_start = min(found[start, end])
        documents = {holder for holder, _ in found[start, end]}
        first_cut = bisect.bisect_left(cut, start)
        truncated = first_cut < len(cut) and cut[first_cut] + window <= end
        exact = end - start >= 2 * window - 1 and not truncated
        spans.append(Span(start, end, document, document_start, len(documents) - 1, exact))
    return spans
