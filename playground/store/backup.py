"""Back up a live SQLite share database with SQLite's online backup API.

A file copy of a live database can capture a half-written page or miss the
WAL; ``sqlite3.Connection.backup`` copies one consistent snapshot while
writers carry on. The copy is written beside the target, switched to a
rollback journal (so it is one self-contained file), checked with
``integrity_check``, and only then renamed over the target.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from playground.errors import StoreError
from playground.store.faults import store_errors


@dataclass(frozen=True)
class BackupResult:
    path: Path
    shares: int
    size_bytes: int


def backup_database(engine: Engine, target: Path) -> BackupResult:
    """Write a consistent copy of the engine's SQLite database to ``target``."""
    if engine.dialect.name != "sqlite":
        raise StoreError(
            f"Backups here use SQLite's backup API, but the share database is {engine.dialect.name}; "
            "use that database's own backup tools."
        )
    source_file = engine.url.database
    target = target.expanduser().resolve()
    if source_file and os.path.realpath(source_file) == str(target):
        raise StoreError("The backup target is the live share database itself; choose another path.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with store_errors("backup"), engine.connect() as conn:
            source = conn.connection.driver_connection
            assert isinstance(source, sqlite3.Connection)
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)  # all pages in one step: one consistent snapshot
                copy.execute("PRAGMA journal_mode = DELETE")
                check = copy.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(
                        f"The backup failed its integrity check ({check}); the live database may be damaged."
                    )
                has_shares = copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'shares'").fetchone()
                shares = copy.execute("SELECT count(*) FROM shares").fetchone()[0] if has_shares else 0
            finally:
                copy.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=target, shares=int(shares), size_bytes=target.stat().st_size)
