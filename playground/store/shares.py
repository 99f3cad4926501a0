"""ShareStore: save a Generation under an unguessable id, open it again exactly, delete it.

- Ids are ``secrets.token_urlsafe(16)`` (128 random bits). Delete tokens are
  ``token_urlsafe(32)``, returned once and stored only as a sha256 hash.
- Deletion is a hard delete (with ``secure_delete`` on, the text is wiped from
  the file), so a deleted id and one that never existed are the same to
  callers: both raise ShareNotFoundError with one fixed message, as do
  malformed ids, which never reach the database.
- Delete-token policy: a missing token is refused (ShareForbiddenError) before
  the id is even looked up; a wrong token for an existing share is refused
  with ShareForbiddenError. That tells a caller the id exists, but anyone who
  knows an id can already read it, so it reveals nothing new.
- Writes are serialized inside the process by a lock (fair queueing instead of
  SQLite's sleep-and-poll busy handler) and start with ``BEGIN IMMEDIATE``
  across processes. Create one ShareStore per database and share it. Across
  replicas on one PostgreSQL, a unique index keeps a generation to one share.
- The store starts even when the database is locked, full or broken: the
  failure is logged, and each call retries the schema check and raises a
  StoreError that says what to do. Reads keep working while writes fail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from playground.errors import ShareForbiddenError, ShareNotFoundError, StoreError, StoreLockedError
from playground.record import Generation
from playground.store.backup import BackupResult, backup_database
from playground.store.database import JournalChoice, open_database, read_transaction, write_transaction
from playground.store.encoding import dump_record, load_record, scrub
from playground.store.faults import BUSY_MESSAGE, store_errors
from playground.store.migrations import migrate
from playground.store.schema import ShareRow

RecordReader = Callable[[Mapping[str, Any]], Generation]  # stored JSON -> record

logger = logging.getLogger("playground.store")

NOT_FOUND_MESSAGE = "Share not found: the link may be mistyped or incomplete, or the share was deleted."
MISSING_TOKEN_MESSAGE = "Deleting a share needs its delete token, which was shown once when the share was created."
UNREADABLE_MESSAGE = (
    "This share was saved in a form this version of the playground cannot read; "
    "please report the link so it can be recovered."
)
WRONG_TOKEN_MESSAGE = "That delete token does not match this share; use the token shown when it was created."

# token_urlsafe(16) is exactly 22 characters of the URL-safe base64 alphabet.
_SHARE_ID = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class CreatedShare:
    id: str
    delete_token: str | None  # shown once, when the share is made; None when it already existed
    created_at: datetime  # UTC-aware

    @property
    def is_new(self) -> bool:
        return self.delete_token is not None


@dataclass(frozen=True)
class Share:
    id: str
    created_at: datetime  # when it was shared (UTC-aware)
    generation: Generation


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_share_id(value: object) -> bool:
    return isinstance(value, str) and _SHARE_ID.fullmatch(value) is not None


class ShareStore:
    """Shared generations in one database. Thread-safe; one instance per database."""

    def __init__(self, database: Engine, *, lock_timeout_s: float = 5.0):
        self._database = database  # SQLAlchemy's connection pool for the store's database
        self._lock_timeout_s = lock_timeout_s  # how long a writer queues inside this process
        self._write_lock = threading.Lock()
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    @classmethod
    def open(
        cls,
        url_or_path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        max_page_count: int | None = None,
        journal: JournalChoice = "auto",
        mounts_text: str | None = None,
    ) -> ShareStore:
        """Open (creating and migrating if needed) the store; database trouble is logged, not raised."""
        engine = open_database(
            url_or_path,
            busy_timeout_ms=busy_timeout_ms,
            max_page_count=max_page_count,
            journal=journal,
            mounts_text=mounts_text,
        )
        store = cls(engine, lock_timeout_s=max(busy_timeout_ms / 1000, 0.1))
        try:
            store.ensure_schema()
        except StoreError as error:
            logger.error("share store not ready at start-up; sharing will fail until fixed: %s", error.message)
        return store

    @property
    def database(self) -> Engine:
        return self._database

    def close(self) -> None:
        self._database.dispose()

    def ensure_schema(self) -> None:
        """Migrate once per store; retried on the next call if it failed."""
        if self._schema_ready:
            return
        with self._schema_lock, store_errors("migrate"):
            if not self._schema_ready:
                migrate(self._database)
                self._schema_ready = True

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction, queued behind this process's other writers first."""
        # Queue on a lock first: wakes the next writer at once, where SQLite's busy handler sleeps and polls.
        if not self._write_lock.acquire(timeout=self._lock_timeout_s):
            raise StoreLockedError(BUSY_MESSAGE)
        try:
            with write_transaction(self._database) as conn:
                yield conn
        finally:
            self._write_lock.release()

    def create(self, generation: Generation) -> CreatedShare:
        """Store a finished generation; return its new id and the one-time delete token. A generation
        shared before gets its existing share back, without a token (it was shown once, at creation):
        looked up inside the write transaction, so two requests at once cannot make two shares."""
        record = scrub(generation.to_dict())
        share_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(32)
        created_at = datetime.now(UTC)
        values = {
            "id": share_id,
            "created_at": created_at,
            "mode": record["mode"],
            "model": record["model"],
            "generation_id": record["id"],
            "delete_token_hash": hash_token(token),
            "record_json": dump_record(record),
            "finish_reason": record["finish_reason"],
            "app_version": record["app_version"],
        }
        self.ensure_schema()
        # A 128-bit id colliding is not a practical event; the primary key would refuse it.
        with store_errors("create share"):
            try:
                with self.writing() as conn:
                    existing = self._share_of(conn, record["id"])
                    if existing is not None:
                        return existing
                    # Values as parameters, not .values(): the statement stays identical, so its compiled
                    # form is cached (building .values() per call cost ~1 ms, half of a create).
                    conn.execute(insert(ShareRow), values)
            except IntegrityError:
                # Another replica shared it in between: the unique index kept it to one share.
                with read_transaction(self._database) as conn:
                    raced = self._share_of(conn, record["id"])
                if raced is None:
                    raise
                return raced
        return CreatedShare(id=share_id, delete_token=token, created_at=created_at)

    @staticmethod
    def _share_of(conn: Connection, generation_id: str) -> CreatedShare | None:
        row = conn.execute(select(ShareRow.id, ShareRow.created_at)
                           .where(ShareRow.generation_id == generation_id).limit(1)).first()
        return None if row is None else CreatedShare(id=row.id, delete_token=None, created_at=row.created_at)

    def get_share(self, share_id: str, read: RecordReader = Generation.from_dict) -> Share:
        """The share with this id; ShareNotFoundError (one fixed message) for anything else. ``read``
        turns the stored JSON into a record (the modes know where each keeps its generated part)."""
        if not is_share_id(share_id):
            raise ShareNotFoundError(NOT_FOUND_MESSAGE)
        self.ensure_schema()
        with store_errors("open share"), read_transaction(self._database) as conn:
            row = conn.execute(
                select(ShareRow.created_at, ShareRow.record_json).where(ShareRow.id == share_id)
            ).first()
        if row is None:
            raise ShareNotFoundError(NOT_FOUND_MESSAGE)
        try:
            generation = read(load_record(row.record_json))
        except (ValueError, TypeError, KeyError) as error:  # bad JSON, or a shape this version cannot read
            logger.error("a stored share cannot be loaded: %s", error)  # its id would grant access: not logged
            raise StoreError(UNREADABLE_MESSAGE) from error
        return Share(id=share_id, created_at=row.created_at, generation=generation)

    def get(self, share_id: str, read: RecordReader = Generation.from_dict) -> Generation:
        return self.get_share(share_id, read).generation

    def delete(self, share_id: str, token: str | None) -> None:
        """Delete a share for good, given its delete token."""
        if not token or not isinstance(token, str):
            raise ShareForbiddenError(MISSING_TOKEN_MESSAGE)
        if not is_share_id(share_id):
            raise ShareNotFoundError(NOT_FOUND_MESSAGE)
        given = hash_token(token)
        self.ensure_schema()
        with store_errors("delete share"), self.writing() as conn:
            stored = conn.execute(select(ShareRow.delete_token_hash).where(ShareRow.id == share_id)).scalar()
            if stored is None:
                raise ShareNotFoundError(NOT_FOUND_MESSAGE)
            if not hmac.compare_digest(stored, given):
                raise ShareForbiddenError(WRONG_TOKEN_MESSAGE)
            conn.execute(delete(ShareRow).where(ShareRow.id == share_id))

    def backup(self, target: str | os.PathLike[str]) -> BackupResult:
        """Copy the live database to ``target`` with SQLite's backup API (atomic replace)."""
        return backup_database(self._database, Path(target))
