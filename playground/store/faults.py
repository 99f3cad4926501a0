"""Translate database failures into StoreError subclasses with messages a person can act on.

SQLite reports its trouble as ``sqlite3.OperationalError`` / ``DatabaseError``
with an error code (Python 3.11+) and a message; SQLAlchemy wraps them. Here
they become the playground's error tree, with the full detail logged and only
the actionable message kept for users. Every message says what still works,
since only sharing is affected.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from playground.errors import StoreCorruptError, StoreError, StoreFullError, StoreLockedError

logger = logging.getLogger("playground.store")

LOCKED_MESSAGE = (
    "Sharing is temporarily unavailable: the share database is locked by another process; "
    "try again in a moment. Generation still works."
)
BUSY_MESSAGE = (
    "Sharing is temporarily unavailable: the share database is busy with other writes; "
    "try again in a moment. Generation still works."
)
FULL_MESSAGE = (
    "Sharing is temporarily unavailable: the share database is full (its disk or size limit is "
    "reached); an operator needs to free space or raise the limit. Generation and opening "
    "existing shares still work."
)
CORRUPT_MESSAGE = (
    "Sharing is unavailable: the share database file is damaged or is not a SQLite database; "
    "an operator should restore it from a backup (python -m playground.store backup). "
    "Generation still works."
)
READONLY_MESSAGE = (
    "Sharing is unavailable: the share database is read-only; an operator needs to make the "
    "file and its folder writable. Generation and opening existing shares still work."
)
CANTOPEN_MESSAGE = (
    "Sharing is unavailable: the share database cannot be opened; an operator should check that "
    "its folder exists and is writable (see the server log for the path). Generation still works."
)
IOERR_MESSAGE = (
    "Sharing is temporarily unavailable: the disk under the share database reported an I/O "
    "error; an operator should check the disk. Generation still works."
)
GENERIC_MESSAGE = (
    "Sharing failed because of a database error; try again, and report it if it keeps happening. "
    "Generation still works."
)

UNREACHABLE_MESSAGE = (
    "Sharing is temporarily unavailable: the database server cannot be reached (it may be down or "
    "restarting); try again in a moment, and an operator should check --database-url and the server. "
    "Generation still works."
)
AUTH_MESSAGE = (
    "Sharing is unavailable: the database server refused the app's user name or password; an operator "
    "needs to fix the credentials in --database-url. Generation still works."
)

# PostgreSQL SQLSTATEs (psycopg's ``sqlstate``): disk full, out of memory for the server, shutting down.
_PG_FULL = {"53100", "53200", "54000"}
_PG_RESTARTING = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
_PG_AUTH = {"28P01", "28000"}

# Primary SQLite result codes (extended codes carry them in the low byte).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26


def _classify_server(error: BaseException) -> StoreError | None:
    """A database server's trouble (PostgreSQL through psycopg), by SQLSTATE and message; None if not one."""
    state = getattr(error, "sqlstate", None)
    text = str(error).lower()
    if state in _PG_AUTH or "password authentication failed" in text or "no password supplied" in text:
        return StoreError(AUTH_MESSAGE)
    if state in _PG_FULL or "no space left on device" in text:
        return StoreFullError(FULL_MESSAGE)
    if state in _PG_RESTARTING or "connection refused" in text or "could not connect" in text or (
            "server closed the connection" in text) or "the database system is" in text:
        return StoreError(UNREACHABLE_MESSAGE)
    return None


def _classify(error: BaseException) -> StoreError:
    server = _classify_server(error)
    if server is not None:
        return server
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(error).lower()
    if primary in (SQLITE_BUSY, SQLITE_LOCKED) or "database is locked" in text:
        return StoreLockedError(LOCKED_MESSAGE)
    if primary == SQLITE_FULL or "database or disk is full" in text:
        return StoreFullError(FULL_MESSAGE)
    if primary in (SQLITE_CORRUPT, SQLITE_NOTADB) or "not a database" in text or "malformed" in text:
        return StoreCorruptError(CORRUPT_MESSAGE)
    if primary == SQLITE_READONLY or "readonly" in text:
        return StoreError(READONLY_MESSAGE)
    if primary == SQLITE_CANTOPEN or "unable to open" in text:
        return StoreError(CANTOPEN_MESSAGE)
    if primary == SQLITE_IOERR or "disk i/o error" in text:
        return StoreError(IOERR_MESSAGE)
    return StoreError(GENERIC_MESSAGE)


def translate(error: BaseException) -> StoreError:
    """The StoreError for a database exception (SQLAlchemy-wrapped or raw sqlite3)."""
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(error, sa_exc.TimeoutError):
        # Every pooled connection stayed busy past the pool timeout: same advice as a lock.
        return StoreLockedError(BUSY_MESSAGE)
    return _classify(original if original is not None else error)


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Raise database failures inside the block as StoreErrors; log the detail once, here."""
    try:
        yield
    except StoreError:
        raise
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, sqlite3.Error) as error:
        translated = translate(error)
        logger.warning("share store: %s failed (%s): %s", action, translated.kind, error)
        raise translated from error
