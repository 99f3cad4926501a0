"""``MemoryIndex``: the same matching over documents held in memory; the test double of ``CodeIndex``.

It fingerprints exactly as a built index does and shares the matcher, so app
tests that use it see the behaviour of the real thing without a file.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Iterable

from playground.attribution._match import find_spans
from playground.attribution._text import NormalizedText, line_range, normalize_newlines, window_hashes
from playground.attribution._types import (
    DEFAULT_MAX_POSTINGS,
    DEFAULT_MIN_CHARS,
    DEFAULT_WINDOW,
    Document,
    IndexInfo,
    Match,
    Source,
)


class MemoryIndex:
    """Implements ``CodeIndex`` over ``documents``; ``window`` and ``max_postings`` as for a built index."""

    def __init__(self, documents: Iterable[Document], *, name: str = "memory", window: int = DEFAULT_WINDOW,
                 max_postings: int = DEFAULT_MAX_POSTINGS):
        self.name = name
        self.window = window
        self.max_postings = max_postings
        self.documents: list[Document] = []
        self._texts: list[str] = []
        self._first_windows: list[int] = []
        self._postings: dict[int, list[int]] = defaultdict(list)
        windows = 0
        for document in documents:
            text = normalize_newlines(document.text)
            hashes = window_hashes(text, window, window)
            if not hashes:
                continue
            self.documents.append(document)
            self._texts.append(text)
            self._first_windows.append(windows)
            for number, hash_ in enumerate(hashes, start=windows):
                if len(self._postings[hash_]) <= max_postings:
                    self._postings[hash_].append(number)
            windows += len(hashes)

    def describe(self) -> IndexInfo:
        return IndexInfo(self.name, len(self._texts), sum(map(len, self._texts)), 2 * self.window - 1)

    def check(self, text: str, *, min_chars: int = DEFAULT_MIN_CHARS) -> list[Match]:
        normalized = NormalizedText.of(text)
        matches: list[Match] = []
        for span in find_spans(normalized.text, self, max(1, min_chars)):
            document = self.documents[span.document]
            lines = line_range(self._texts[span.document], span.document_start,
                               span.document_start + span.end - span.start)
            start, end = normalized.original_span(span.start, span.end)
            source = Source(self.name, document.path, document.repo, document.license, *lines)
            matches.append(Match(start, end, text[start:end], source, span.other_documents, span.exact))
        return matches

    def close(self) -> None:
        pass

    # The matcher's Store protocol.
    def lookup(self, hashes: Collection[int]) -> dict[int, list[int]]:
        return {hash_: self._postings[hash_] for hash_ in hashes if hash_ in self._postings}

    def locate(self, window_number: int) -> tuple[int, int]:
        document = bisect.bisect_right(self._first_windows, window_number) - 1
        return document, (window_number - self._first_windows[document]) * self.window

    def texts(self, documents: Collection[int]) -> dict[int, str]:
        return {document: self._texts[document] for document in documents}
