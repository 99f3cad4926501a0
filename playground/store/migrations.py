"""Versioned schema for the share store: an append-only list of small named migrations.

Each migration is a function taking a Connection inside the migrating
transaction. The ``schema_migrations`` table records which ran, by function
name. A shipped migration is never edited or reordered; a change to the schema
is a new function appended to ``MIGRATIONS``. Migrations are plain SQL (not the
ORM models) so they keep meaning what they meant when they shipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, text

from playground.errors import StoreError
from playground.store.database import read_transaction, write_transaction

logger = logging.getLogger("playground.store")

Migration = Callable[[Connection], None]


def m001_create_shares(conn: Connection) -> None:
    conn.execute(text("""
        CREATE TABLE shares (
            id TEXT NOT NULL PRIMARY KEY,
            created_at TEXT NOT NULL,
            mode TEXT NOT NULL,
            model TEXT NOT NULL,
            generation_id TEXT NOT NULL,
            delete_token_hash TEXT NOT NULL,
            record_json TEXT NOT NULL
        )
    """))
    conn.execute(text("CREATE INDEX ix_shares_created_at ON shares (created_at)"))


def m002_finish_reason_and_app_version(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE shares ADD COLUMN finish_reason TEXT"))
    conn.execute(text("ALTER TABLE shares ADD COLUMN app_version TEXT"))
    # Backfill in Python rather than json_extract, so it works on any database.
    rows = conn.execute(text("SELECT id, record_json FROM shares")).all()
    for share_id, record_json in rows:
        record = json.loads(record_json)
        conn.execute(
            text("UPDATE shares SET finish_reason = :f, app_version = :v WHERE id = :id"),
            {"f": record.get("finish_reason"), "v": record.get("app_version"), "id": share_id},
        )


def m003_lookup_indexes(conn: Connection) -> None:
    conn.execute(text("CREATE INDEX ix_shares_model ON shares (model)"))
    conn.execute(text("CREATE INDEX ix_shares_generation_id ON shares (generation_id)"))


def m004_generations(conn: Connection) -> None:
    # Every finished generation, so that any replica can share, read or re-run what another made.
    conn.execute(text("""
        CREATE TABLE generations (
            id TEXT NOT NULL PRIMARY KEY,
            created_at TEXT NOT NULL,
            mode TEXT NOT NULL,
            model TEXT NOT NULL,
            record_json TEXT NOT NULL
        )
    """))
    conn.execute(text("CREATE INDEX ix_generations_created_at ON generations (created_at)"))


def m005_one_share_per_generation(conn: Connection) -> None:
    # The database, not a lock in one process, keeps a generation to one share across replicas. Earlier
    # versions looked up before inserting under SQLite's write lock, so no duplicate can exist yet.
    conn.execute(text("DROP INDEX ix_shares_generation_id"))
    conn.execute(text("CREATE UNIQUE INDEX ux_shares_generation_id ON shares (generation_id)"))


def m006_rate_windows(conn: Connection) -> None:
    # Per-minute request counters, so a rate limit holds across replicas (see store/limits.py).
    conn.execute(text("""
        CREATE TABLE rate_windows (
            key TEXT NOT NULL,
            window_start BIGINT NOT NULL,
            hits INTEGER NOT NULL,
            PRIMARY KEY (key, window_start)
        )
    """))


MIGRATIONS: tuple[Migration, ...] = (
    m001_create_shares,
    m002_finish_reason_and_app_version,
    m003_lookup_indexes,
    m004_generations,
    m005_one_share_per_generation,
    m006_rate_windows,
)
LATEST_VERSION = len(MIGRATIONS)

_MIGRATION_LOCK = 7860_0001  # any constant: the advisory lock only this app's migrations take
_CREATE_LEDGER = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        name TEXT NOT NULL PRIMARY KEY,
        applied_at TEXT NOT NULL
    )
"""


def applied_migrations(engine: Engine) -> list[str]:
    """Names of the migrations this database has had, in the order they ran."""
    with read_transaction(engine) as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return []
        return list(conn.execute(text("SELECT name FROM schema_migrations ORDER BY applied_at, name")).scalars())


def _check_known(applied: list[str]) -> None:
    known = {m.__name__ for m in MIGRATIONS}
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise StoreError(
            f"The share database was written by a newer version of the playground (it has migration "
            f"{unknown[0]!r}, which this version does not know); upgrade the playground or point it "
            "at another database."
        )


def migrate(engine: Engine, *, upto: int | None = None) -> list[str]:
    """Apply the missing migrations (only the first ``upto`` when given); return the names applied.

    Reading first keeps an up-to-date database read-only here, so start-up works even while
    another process holds the write lock. All missing migrations run in one transaction.
    """
    wanted = MIGRATIONS[:upto] if upto is not None else MIGRATIONS
    applied = applied_migrations(engine)
    _check_known(applied)
    if all(m.__name__ in applied for m in wanted):
        return []
    done: list[str] = []
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait here, then find it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        conn.execute(text(_CREATE_LEDGER))
        # Re-read under the write lock: another process may have migrated meanwhile.
        present = set(conn.execute(text("SELECT name FROM schema_migrations")).scalars())
        for migration in wanted:
            if migration.__name__ in present:
                continue
            migration(conn)
            conn.execute(
                text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :t)"),
                {"n": migration.__name__, "t": datetime.now(UTC).isoformat(timespec="microseconds")},
            )
            done.append(migration.__name__)
    if done:
        logger.info("share store migrated: %s", ", ".join(done))
    return done
