"""Finding verbatim spans: candidate windows, then alignments, then extension and exact verification.

The corpus side fingerprints windows at every multiple of w; the checked text
fingerprints a window at every offset. A verbatim span of 2w-1 chars or more
must contain one whole corpus window, so its hash is looked up for certain.
Each hit gives a document and an alignment (document offset minus text
offset); the span is then grown left and right by comparing the real texts, so
only text that is equal character for character is ever reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from playground.attribution._text import common_prefix, common_suffix, window_hashes

MAX_COMPARED = 256  # holders of a span compared before others are counted as "at least"; as max_postings
PREFETCH = 16  # documents fetched per query while verifying


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
    alignments: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    uncounted: set[tuple[int, int]] = set()  # text regions some holders of which were not compared
    for hash_, offsets in offsets_by_hash.items():
        windows = postings[hash_]
        if len(windows) > store.max_postings:
            uncounted.update((offset, offset + window) for offset in offsets)
        for number in windows:
            document, document_offset = store.locate(number)
            for offset in offsets:
                alignments[document, document_offset - offset].append(offset)
    verifier = _Verifier(text, store, min_chars)
    verifier.run(alignments)
    return _maximal(verifier.found, uncounted | verifier.skipped, window)


class _Verifier:
    """Grows and checks each alignment against the real document text, widest evidence first.

    Boilerplate can give one region of the text thousands of candidate
    documents. A candidate's span cannot reach more than w-1 chars past its
    hits (its next window would then be a hit too), so once ``limit`` documents
    hold a span that covers that whole reach, the candidate could only add to
    the span's count: it is not fetched, and the count becomes a lower bound.
    Spans are never cut short by this; an earlier rule that skipped any
    candidate whose hits lay inside such a span lost 0.3% of planted spans at
    1 GB (see docs/attribution.md).
    """

    def __init__(self, text: str, store: Store, min_chars: int):
        self.text, self.store, self.min_chars = text, store, min_chars
        self.limit = min(MAX_COMPARED, store.max_postings)
        self.found: defaultdict[tuple[int, int], dict[int, int]] = defaultdict(dict)  # span -> {doc: doc start}
        self.full: list[tuple[int, int]] = []  # spans with ``limit`` documents already
        self.skipped: set[tuple[int, int]] = set()

    def run(self, alignments: dict[tuple[int, int], list[int]]) -> None:
        window = self.store.window
        ordered = sorted(alignments.items(), key=lambda item: (min(item[1]) - max(item[1]), item[0]))
        texts: dict[int, str] = {}
        for at, ((document, shift), offsets) in enumerate(ordered):
            region = (min(offsets), max(offsets) + window)
            # Its span reaches at most w-1 chars past its hits (or its next window would be a hit too).
            reach = (max(0, region[0] - window + 1), min(len(self.text), region[1] + window - 1))
            if any(start <= reach[0] and reach[1] <= end for start, end in self.full):
                self.skipped.add(region)
                continue
            if document not in texts:  # fetch this one and the next few in one query
                upcoming = {doc for (doc, _), _ in ordered[at : at + PREFETCH]} - texts.keys()
                texts.update(self.store.texts(upcoming))
            self._grow(texts[document], document, shift, sorted(offsets))

    def _grow(self, source: str, document: int, shift: int, offsets: list[int]) -> None:
        text, window = self.text, self.store.window
        covered = -1
        for offset in offsets:
            if offset + window <= covered:
                continue  # this hit lies inside the span already grown on this alignment
            position = offset + shift
            right = common_prefix(text, offset, source, position)
            if right < window:
                continue  # a 64-bit hash collision: the windows differ
            left = common_suffix(text, offset, source, position)
            start, end = offset - left, offset + right
            covered = end
            if end - start >= self.min_chars:
                holders = self.found[start, end]
                holders.setdefault(document, position - left)
                if len(holders) == self.limit:
                    self.full.append((start, end))


def _maximal(found: dict[tuple[int, int], dict[int, int]], uncounted: set[tuple[int, int]],
             window: int) -> list[Span]:
    """Drop spans inside a longer one; give each survivor its first document and a count of the others.

    Spans that only overlap stay separate: their union occurs in no one document.
    """
    spans: list[Span] = []
    reach = -1
    for start, end in sorted(found, key=lambda key: (key[0], -key[1])):
        if end <= reach:
            continue  # starts no earlier and ends no later than a span already kept
        reach = end
        holders = found[start, end]
        document = min(holders)
        partial = any(start <= first and last <= end for first, last in uncounted)
        exact = end - start >= 2 * window - 1 and not partial
        spans.append(Span(start, end, document, holders[document], len(holders) - 1, exact))
    return spans
