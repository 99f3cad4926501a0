"""A SQLite index opened for checking: ``SqliteIndex.open(path).check(text)``.

One connection per index, shared by threads under a lock: a check takes a few
milliseconds, so serializing them costs less than a connection per thread.
Every failure of the file, at open or mid-check, surfaces as
``AttributionUnavailable``.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
import zlib
from array import array
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from playground.attribution import _postings
from playground.attribution._match import Span, find_spans
from playground.attribution._schema import connect_readonly, corrupt, read_errors, read_meta
from playground.attribution._text import NormalizedText, line_range
from playground.attribution._types import DEFAULT_MIN_CHARS, IndexInfo, Match, Source

DEFAULT_BUSY_TIMEOUT_S = 1.0  # a check waits this long for a lock before reporting the index unavailable
_CHUNK = 4096  # host parameters per IN (...) query; SQLite allows 32766


class SqliteIndex:
    """An index file built by ``build_index``; implements ``CodeIndex``."""

    def __init__(self, path: Path, connection: sqlite3.Connection, meta: dict[str, str], first_windows: array[int],
                 filter_: bytes):
        self.path = path
        self._db = connection
        self._lock = threading.Lock()
        self._first_windows = first_windows
        self._filter = filter_
        try:
            self.window = int(meta["window"])
            self.max_postings = int(meta["max_postings"])
            self._bits = int(meta["bucket_bits"])
            self._info = IndexInfo(meta["name"], int(meta["documents"]), int(meta["chars"]), 2 * self.window - 1)
        except (KeyError, ValueError):
            raise corrupt(path) from None

    @classmethod
    def open(cls, path: Path | str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> SqliteIndex:
        path = Path(path)
        connection = connect_readonly(path, busy_timeout_s)
        try:
            meta = read_meta(connection, path)
            with read_errors(path):
                # Both stay in memory: 8 bytes a document, and 1 byte a window (20 MB per GB of text).
                first_windows = array("q", (row[0] for row in connection.execute(
                    "SELECT first_window FROM docs ORDER BY id")))
                filter_ = b"".join(row[0] for row in connection.execute("SELECT bits FROM filter ORDER BY id"))
            if not filter_:
                raise corrupt(path)
            return cls(path, connection, meta, first_windows, filter_)
        except BaseException:
            connection.close()
            raise

    def describe(self) -> IndexInfo:
        return self._info

    def check(self, text: str, *, min_chars: int = DEFAULT_MIN_CHARS) -> list[Match]:
        """Every maximal span of ``text`` (at least ``min_chars`` long) found verbatim in a document."""
        normalized = NormalizedText.of(text)
        with self._lock, read_errors(self.path):
            reader = _Reader(self)
            spans = find_spans(normalized.text, reader, max(1, min_chars))
            return self._matches(text, normalized, spans, reader)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _matches(self, text: str, normalized: NormalizedText, spans: Sequence[Span], reader: _Reader) -> list[Match]:
        sources = _rows(self._db, "SELECT id, path, repo, license FROM docs WHERE id IN ({})",
                        sorted({span.document for span in spans}))
        described = {row[0]: row[1:] for row in sources}
        matches: list[Match] = []
        for span in spans:
            path, repo, license_ = described[span.document]
            document = reader.cache[span.document]
            first, last = line_range(document, span.document_start, span.document_start + span.end - span.start)
            start, end = normalized.original_span(span.start, span.end)
            source = Source(self._info.name, path, repo, license_, first, last)
            matches.append(Match(start, end, text[start:end], source, span.other_documents, span.exact))
        return matches


class _Reader:
    """The ``Store`` one check reads through; it keeps each decompressed document for the check's length."""

    def __init__(self, index: SqliteIndex):
        self._index = index
        self.cache: dict[int, str] = {}

    @property
    def window(self) -> int:
        return self._index.window

    @property
    def max_postings(self) -> int:
        return self._index.max_postings

    def lookup(self, hashes: Collection[int]) -> dict[int, list[int]]:
        filter_, filter_bits = self._index._filter, len(self._index._filter) * 8
        shift, base = 64 - self._index._bits, 1 << (self._index._bits - 1)  # _postings.bucket_of, inlined
        by_bucket: defaultdict[int, list[int]] = defaultdict(list)
        for hash_ in hashes:
            bit = hash_ % filter_bits  # _postings.may_hold, inlined: most windows of a new text stop here
            if filter_[bit >> 3] >> (bit & 7) & 1:
                by_bucket[(hash_ >> shift) + base].append(hash_)
        found: dict[int, list[int]] = {}
        for bucket, entries in _rows(self._index._db, "SELECT bucket, entries FROM postings WHERE bucket IN ({})",
                                     list(by_bucket)):
            for hash_ in by_bucket[bucket]:
                key = hash_.to_bytes(8, "little", signed=True)
                at = entries.find(key)
                if at >= 0:
                    windows = _postings.find(entries, key, at)
                    if windows:
                        found[hash_] = windows
        return found

    def locate(self, window_number: int) -> tuple[int, int]:
        firsts = self._index._first_windows
        document = bisect.bisect_right(firsts, window_number) - 1
        return document, (window_number - firsts[document]) * self._index.window

    def texts(self, documents: Collection[int]) -> dict[int, str]:
        wanted = sorted(set(documents) - self.cache.keys())
        query = ("SELECT d.id, substr(b.data, d.offset + 1, d.size) FROM docs AS d JOIN blocks AS b "
                 "ON b.id = d.block WHERE d.id IN ({})")
        for document, body in _rows(self._index._db, query, wanted):
            try:
                self.cache[document] = zlib.decompress(body).decode("utf-8", "surrogatepass")
            except (zlib.error, UnicodeDecodeError, TypeError):
                raise corrupt(self._index.path) from None
        if any(document not in self.cache for document in documents):
            raise corrupt(self._index.path)  # a posting names a document that is not stored
        return {document: self.cache[document] for document in documents}


def _rows(db: sqlite3.Connection, query: str, keys: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` with its ``IN ({})`` filled by ``keys``, in chunks SQLite accepts."""
    for at in range(0, len(keys), _CHUNK):
        chunk = keys[at : at + _CHUNK]
        yield from db.execute(query.format(",".join("?" * len(chunk))), chunk).fetchall()
