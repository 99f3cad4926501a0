"""Locked, full and broken databases: sharing fails with a clear message; reading old shares still works."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from playground.errors import ShareNotFoundError, StoreCorruptError, StoreError, StoreFullError, StoreLockedError
from playground.store import ShareStore
from playground.store.database import JournalChoice
from playground.web.errors import status_of
from tests.store.store_factories import make_generation


@contextmanager
def held_lock(db_path: Path, kind: str) -> Iterator[None]:
    """Another process-like connection holding the write lock (IMMEDIATE or EXCLUSIVE)."""
    other = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    other.execute(f"BEGIN {kind}")
    other.execute("CREATE TABLE IF NOT EXISTS lock_holder (x)")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize(("journal", "lock"), [("wal", "EXCLUSIVE"), ("wal", "IMMEDIATE"), ("delete", "IMMEDIATE")])
def test_locked_database_fails_fast_with_a_clear_message_and_reads_still_work(
    tmp_path: Path, journal: JournalChoice, lock: str
) -> None:
    db = tmp_path / "shares.db"
    store = ShareStore.open(db, busy_timeout_ms=150, journal=journal)
    existing = store.create(make_generation(text="before the lock"))
    with held_lock(db, lock):
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as caught:
            store.create(make_generation())
        assert time.monotonic() - started < 3
        assert status_of(caught.value) == 503
        assert "locked by another process" in caught.value.message and "Generation still works" in caught.value.message
        with pytest.raises(StoreLockedError):
            store.delete(existing.id, existing.delete_token)
        assert store.get(existing.id).text == "before the lock"
        with pytest.raises(ShareNotFoundError):
            store.get("A" * 22)
    # The lock is gone: sharing works again without a restart.
    assert store.get(store.create(make_generation()).id)
    store.close()


def test_store_opened_while_locked_still_reads(tmp_path: Path) -> None:
    db = tmp_path / "shares.db"
    first = ShareStore.open(db)
    existing = first.create(make_generation(text="old"))
    first.close()
    with held_lock(db, "IMMEDIATE"):
        store = ShareStore.open(db, busy_timeout_ms=100)  # migrations are current: no write needed
        assert store.get(existing.id).text == "old"
        with pytest.raises(StoreLockedError):
            store.create(make_generation())
    store.close()


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_full_database_fails_with_a_clear_message_and_reads_still_work(tmp_path: Path, journal: JournalChoice) -> None:
    store = ShareStore.open(tmp_path / "shares.db", max_page_count=40, journal=journal)
    acknowledged = []
    with pytest.raises(StoreFullError) as caught:
        for i in range(500):  # 40 pages of 4 KiB: full after a few dozen 3 KB shares
            acknowledged.append((store.create(make_generation(text=f"{i}:" + "x" * 3000)), i))
    assert 5 < len(acknowledged) < 500
    assert status_of(caught.value) == 507
    assert "full" in caught.value.message and "opening existing shares still work" in caught.value.message
    for created, i in acknowledged:
        assert store.get(created.id).text.startswith(f"{i}:")
    # Deleting frees space (the operator's remedy), and sharing works again.
    for created, _ in acknowledged[:5]:
        store.delete(created.id, created.delete_token)
    assert store.get(store.create(make_generation(text="after")).id).text == "after"
    with sqlite3.connect(tmp_path / "shares.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_garbage_file_gives_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "shares.db"
    db.write_bytes(b"definitely not a database\n" * 400)
    store = ShareStore.open(db)  # start-up carries on: generation must keep working
    for action in (lambda: store.create(make_generation()), lambda: store.get("A" * 22)):
        with pytest.raises(StoreCorruptError) as caught:
            action()
        assert "not a SQLite database" in caught.value.message and "backup" in caught.value.message
    # The schema check is retried on each call and keeps saying what is wrong, rather than crashing.
    with pytest.raises(StoreCorruptError, match="not a SQLite database"):
        store.ensure_schema()
    store.close()


def test_damaged_pages_give_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "shares.db"
    store = ShareStore.open(db, journal="delete")
    created = [store.create(make_generation(text="y" * 2000)) for _ in range(30)]
    store.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # keep the header page, scramble the rest
        data[offset : offset + page] = bytes((i * 7 + 3) % 256 for i in range(page))
    db.write_bytes(bytes(data))
    store = ShareStore.open(db, journal="delete")
    with pytest.raises(StoreCorruptError):
        for share in created:
            store.get(share.id)
    store.close()


def test_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    store = ShareStore.open(blocker / "shares.db")
    with pytest.raises(StoreError) as caught:
        store.create(make_generation())
    assert "cannot be opened" in caught.value.message
    store.close()
