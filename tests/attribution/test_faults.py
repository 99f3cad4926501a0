"""Every way an index can be unreadable raises AttributionUnavailable with a message saying what to do."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from playground.attribution import Attribution, AttributionUnavailable, SqliteIndex
from playground.errors import PlaygroundError

from .conftest import STDLIB, fenced, lines


def _unavailable(path: Path, reason: str) -> AttributionUnavailable:
    with pytest.raises(AttributionUnavailable) as caught:
        SqliteIndex.open(path, busy_timeout_s=0.05).check(fenced(_planted()))
    assert caught.value.reason == reason and isinstance(caught.value, PlaygroundError)
    assert str(path) in caught.value.message and "Traceback" not in caught.value.message
    return caught.value


def _planted() -> str:
    return lines((STDLIB / "textwrap.py").read_text(encoding="utf-8"), 40, 60)


def test_missing_index(tmp_path: Path) -> None:
    error = _unavailable(tmp_path / "nope.sqlite", "missing")
    assert "python -m playground.attribution build" in error.message
    assert not (tmp_path / "nope.sqlite").exists()  # opening never creates the file


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database\n" * 500)
    assert "rebuild it" in _unavailable(tmp_path / "junk.sqlite", "corrupt").message


def test_a_truncated_index(index_path: Path, tmp_path: Path) -> None:
    data = index_path.read_bytes()
    (tmp_path / "cut.sqlite").write_bytes(data[: len(data) // 3])
    _unavailable(tmp_path / "cut.sqlite", "corrupt")


def test_damaged_document_text_is_caught_not_reported(index_path: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    shutil.copy(index_path, damaged)
    with sqlite3.connect(damaged) as db:
        db.execute("UPDATE blocks SET data = zeroblob(length(data))")
    _unavailable(damaged, "corrupt")


def test_a_sqlite_file_that_is_not_an_index(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE shares(id TEXT)")
    assert "not an attribution index" in _unavailable(tmp_path / "other.sqlite", "not_an_index").message


def test_a_newer_format(index_path: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    shutil.copy(index_path, newer)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
    assert "upgrade the playground" in _unavailable(newer, "newer_format").message


def test_an_index_locked_by_another_connection(index_path: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.sqlite"
    shutil.copy(index_path, locked)
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert "try again" in _unavailable(locked, "locked").message
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_lock_taken_after_opening_fails_the_check(index_path: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.sqlite"
    shutil.copy(index_path, locked)
    index = SqliteIndex.open(locked, busy_timeout_s=0.05)
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(AttributionUnavailable) as caught:
            index.check(fenced(_planted()))
        assert caught.value.reason == "locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert index.check(fenced(_planted())) != []  # usable again once the lock is gone
    index.close()


def test_attribution_open_closes_what_it_opened_when_one_index_fails(index_path: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[Path] = []
    original = SqliteIndex.close

    def spy(self: SqliteIndex) -> None:
        closed.append(self.path)
        original(self)

    monkeypatch.setattr(SqliteIndex, "close", spy)
    with pytest.raises(AttributionUnavailable):
        Attribution.open([index_path, tmp_path / "missing.sqlite"])
    assert closed == [index_path]
