"""Building an index: documents in, one SQLite file out, written to a temporary name and renamed.

Pass one stores each document (compressed) and collects one (hash, window)
entry per ``window`` chars in a ``Spill`` (temporary files beside the output).
Pass two sorts them by hash and packs them into bucket rows in key order, so
the table's pages come out full, and fills the filter on the way.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from playground.attribution import _postings
from playground.attribution._errors import IndexBuildError
from playground.attribution._schema import FORMAT_NAME, FORMAT_VERSION, HASH_NAME, SCHEMA
from playground.attribution._sources import plan_inputs, read_inputs
from playground.attribution._spill import Spill
from playground.attribution._text import normalize_newlines, window_hashes
from playground.attribution._types import BuildOptions, BuildSummary, Document

BLOCK_BYTES = 64 * 1024  # compressed documents packed per row; one read serves a few small documents
ZLIB_LEVEL = 6  # level 9 saves under 1% on code and is three times slower
FILTER_ROW_BYTES = 16 * 1024 * 1024  # the filter is stored in rows of this size, each far below SQLite's limit


def build_index(out: Path, inputs: Sequence[Path], options: BuildOptions | None = None) -> BuildSummary:
    """Index every document found under ``inputs`` into ``out`` (replaced atomically when done)."""
    options = options or BuildOptions()
    skipped: Counter[str] = Counter()
    planned = plan_inputs(inputs, options, skipped)
    total = sum(item.size for item in planned)
    with progress_bar(total, options.progress, "indexing", "B") as advance:
        documents = read_inputs(planned, options, skipped, advance)
        return write_index(out, documents, options, skipped=skipped, input_bytes=total)


def write_index(out: Path, documents: Iterable[Document], options: BuildOptions | None = None, *,
                skipped: Counter[str] | None = None, input_bytes: int | None = None) -> BuildSummary:
    """Index ``documents`` into ``out``; the lower-level entry for callers that already hold the texts."""
    options = options or BuildOptions()
    if options.window < 8 or options.max_postings < 1:
        raise IndexBuildError("The window must be at least 8 chars and max_postings at least 1.")
    skipped = Counter() if skipped is None else skipped
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".building")
    os.close(handle)
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.", suffix=".spill") as spill:
            writer = _Writer(Path(temporary), Path(spill), options)
            try:
                counted_bytes = 0
                for document in documents:
                    counted_bytes += writer.add(document, skipped)
                name = options.name or out.stem
                writer.finish(name, options.progress)
            finally:
                writer.close()
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())  # the data is on disk before the new name points at it
        os.chmod(temporary, 0o644)  # mkstemp made it private; an index is read by the app's user, often another
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return BuildSummary(str(out), name, writer.documents, writer.chars,
                        counted_bytes if input_bytes is None else input_bytes, out.stat().st_size,
                        time.perf_counter() - started, dict(skipped))


class _Writer:
    """Pass one and pass two over one open database; not reusable after ``finish``."""

    def __init__(self, path: Path, spill: Path, options: BuildOptions):
        self.options = options
        self.spill = Spill(spill)
        self.documents = self.chars = self.windows = 0
        self.block_id, self.block = 0, bytearray()
        self.doc_rows: list[tuple[int, int, int, int, int, int, str, str, str]] = []
        self.db = sqlite3.connect(path, isolation_level=None)
        # The file is private until renamed, so a crash only loses it: no journal, no syncs.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -65536"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")

    def add(self, document: Document, skipped: Counter[str]) -> int:
        """Store one document; returns its size in bytes as read."""
        text = normalize_newlines(document.text)
        hashes = window_hashes(text, self.options.window, self.options.window)
        if not hashes:
            skipped["too_short"] += 1  # shorter than one window: nothing in it could be found
            return len(document.text)
        if self.windows + len(hashes) >= _postings.MAX_WINDOWS:
            raise IndexBuildError("The corpus is too large for one index (over 4.29 billion windows); "
                                  "split it into several indexes.")
        body = zlib.compress(text.encode("utf-8", "surrogatepass"), ZLIB_LEVEL)
        self.doc_rows.append((self.documents, self.windows, len(text), self.block_id, len(self.block), len(body),
                              document.path, document.repo, document.license))
        self.block += body
        self.spill.add(hashes, self.windows)
        self.documents += 1
        self.chars += len(text)
        self.windows += len(hashes)
        if len(self.block) >= BLOCK_BYTES:
            self._flush_block()
        return len(document.text)

    def _flush_block(self) -> None:
        if self.block:
            self.db.execute("INSERT INTO blocks(id, data) VALUES (?, ?)", (self.block_id, bytes(self.block)))
            self.block_id, self.block = self.block_id + 1, bytearray()
        self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.doc_rows)
        self.doc_rows = []

    def finish(self, name: str, progress: bool | None) -> None:
        self._flush_block()
        bits = _postings.bucket_bits(self.windows)
        filter_ = _postings.new_filter(self.windows)
        with progress_bar(self.windows, progress, "packing", " windows") as advance:
            entries = self.spill.sorted_entries(advance)
            buckets = _postings.pack_buckets(entries, bits, self.options.max_postings + 1, filter_)
            self.db.executemany("INSERT INTO postings(bucket, entries) VALUES (?, ?)", buckets)
        self.db.executemany("INSERT INTO filter(id, bits) VALUES (?, ?)",
                            ((at, bytes(filter_[at : at + FILTER_ROW_BYTES]))
                             for at in range(0, len(filter_), FILTER_ROW_BYTES)))
        meta = {
            "format": FORMAT_NAME, "version": str(FORMAT_VERSION), "name": name, "hash": HASH_NAME,
            "window": str(self.options.window), "bucket_bits": str(bits),
            "max_postings": str(self.options.max_postings), "documents": str(self.documents),
            "chars": str(self.chars), "windows": str(self.windows), "newlines": "lf",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool | None, label: str, unit: str) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr when asked, or by default when stderr is a terminal; otherwise a no-op."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _count: None
        return
    tqdm = importlib.import_module("tqdm").tqdm  # imported on use: building is rare, starting the app is not
    with tqdm(total=total, desc=label, unit=unit, unit_scale=True, file=sys.stderr, leave=False) as bar:
        yield bar.update
