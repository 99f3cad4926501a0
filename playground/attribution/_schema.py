"""The on-disk format of an index (one SQLite file), and how its failures become user messages.

    meta(key, value)             format, version, name, window, bucket_shift, counts
    docs(id, first_window, chars, block, offset, size, path, repo, license)
    blocks(id, data)             zlib-compressed documents, packed about 64 KB to a row
    postings(bucket, entries)    for each bucket of window hashes, 12-byte (hash, window) entries
    filter(id, bits)             one byte a window: a hash whose bit is clear is in no document

Documents are compressed one by one but stored packed into blocks, because a
small BLOB of its own would waste most of its last overflow page. A bucket is the
top bits of the 64-bit hash; packing a bucket's entries into one row costs about
13 bytes a window, where a (hash, doc, offset) row costs about 19 with SQLite's
per-row headers (see docs/attribution.md for both measurements).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playground.attribution._errors import REBUILD_HINT, AttributionUnavailable

logger = logging.getLogger("playground.attribution")

FORMAT_NAME = "playground-attribution-index"
FORMAT_VERSION = 1
HASH_NAME = "xxh3-64"

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE docs(
    id INTEGER PRIMARY KEY,          -- dense from 0, in window order
    first_window INTEGER NOT NULL,   -- global number of the document's first window
    chars INTEGER NOT NULL,          -- length of the LF-normalized text
    block INTEGER NOT NULL,
    offset INTEGER NOT NULL,         -- where the compressed text starts in its block
    size INTEGER NOT NULL,           -- compressed length
    path TEXT NOT NULL,
    repo TEXT NOT NULL,
    license TEXT NOT NULL
);
CREATE TABLE blocks(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE postings(bucket INTEGER PRIMARY KEY, entries BLOB NOT NULL);
CREATE TABLE filter(id INTEGER PRIMARY KEY, bits BLOB NOT NULL);  -- id: byte offset of the row's bits
"""

# Primary SQLite result codes (extended codes keep them in the low byte).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 5, 6, 14, 26


def missing(path: Path) -> AttributionUnavailable:
    return AttributionUnavailable(
        f"The attribution index {path} does not exist; build it with `python -m playground.attribution build` "
        "or point the playground at the right file.",
        reason="missing", path=str(path))


def corrupt(path: Path) -> AttributionUnavailable:
    return AttributionUnavailable(
        f"The attribution index {path} is damaged or is not a SQLite file; {REBUILD_HINT}.",
        reason="corrupt", path=str(path))


def locked(path: Path) -> AttributionUnavailable:
    return AttributionUnavailable(
        f"The attribution index {path} is locked by another process (perhaps a build writing to it); "
        "try again when that process has finished.",
        reason="locked", path=str(path))


def not_an_index(path: Path) -> AttributionUnavailable:
    return AttributionUnavailable(
        f"{path} is a SQLite database but not an attribution index; {REBUILD_HINT} or choose the right file.",
        reason="not_an_index", path=str(path))


def newer_format(path: Path, version: int) -> AttributionUnavailable:
    return AttributionUnavailable(
        f"The attribution index {path} uses format {version}, but this playground reads formats up to "
        f"{FORMAT_VERSION}; upgrade the playground, or {REBUILD_HINT} with this version.",
        reason="newer_format", path=str(path))


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn any SQLite failure while reading ``path`` into ``AttributionUnavailable``."""
    try:
        yield
    except (AttributionUnavailable, sqlite3.ProgrammingError):
        raise  # ProgrammingError: the caller used a closed index, a bug of its own, not a fault of the file
    except sqlite3.Error as error:
        logger.warning("attribution index %s failed: %r", path, error)
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(error):
            raise locked(path) from error
        if code == _SQLITE_CANTOPEN and not path.exists():
            raise missing(path) from error
        raise corrupt(path) from error


def connect_readonly(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` read-only. The file is never created, and a lock is waited for at most the timeout."""
    if not path.is_file():
        raise missing(path)
    with read_errors(path):
        uri = f"{path.resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, check_same_thread=False)
        # mmap spares a read() syscall per page; the index is read-mostly and often larger than SQLite's cache.
        connection.execute("PRAGMA mmap_size = 1073741824")
        connection.execute("PRAGMA cache_size = -32768")
        return connection


def read_meta(connection: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The meta table, after checking the file is an index in a format this code can read."""
    with read_errors(path):
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise not_an_index(path)
        meta = {str(key): str(value) for key, value in connection.execute("SELECT key, value FROM meta")}
    if meta.get("format") != FORMAT_NAME:
        raise not_an_index(path)
    try:
        version = int(meta["version"])
    except (KeyError, ValueError):
        raise corrupt(path) from None
    if version > FORMAT_VERSION:
        raise newer_format(path, version)
    if not {"docs", "blocks", "postings", "filter"} <= tables:
        raise corrupt(path)
    return meta
