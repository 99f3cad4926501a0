"""Migrations: from empty and from every earlier version, to the same schema, with data kept."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from playground.errors import StoreError
from playground.store import LATEST_VERSION, MIGRATIONS, ShareStore, applied_migrations, migrate, open_database
from playground.store.schema import Base
from playground.store.shares import hash_token
from tests.store.store_factories import make_generation


def schema_of(db: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        query = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        return sorted(conn.execute(query))


def fresh_schema(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    db = tmp_path / "fresh.db"
    engine = open_database(db)
    assert migrate(engine) == [m.__name__ for m in MIGRATIONS]
    assert migrate(engine) == []  # idempotent
    engine.dispose()
    return schema_of(db)


def insert_share_as(version: int, db: Path, share_id: str, token: str, finish_reason: str) -> dict[str, object]:
    """A share as schema ``version`` stored it: from version 2 on, with finish_reason/app_version."""
    record = make_generation(finish_reason=finish_reason, app_version="0.0.9", text="old ☃ \x00").to_dict()
    values = {
        "id": share_id, "created_at": "2026-01-02T03:04:05.000006+00:00", "mode": record["mode"],
        "model": record["model"], "generation_id": record["id"], "delete_token_hash": hash_token(token),
        "record_json": json.dumps(record, ensure_ascii=False),
    }
    if version >= 2:
        values |= {"finish_reason": record["finish_reason"], "app_version": record["app_version"]}
    with sqlite3.connect(db) as conn:
        names = ", ".join(values)
        conn.execute(f"INSERT INTO shares ({names}) VALUES ({', '.join('?' * len(values))})", tuple(values.values()))
    return record


def test_versions_are_append_only_and_named_in_order() -> None:
    names = [m.__name__ for m in MIGRATIONS]
    assert names == sorted(names) and len(set(names)) == len(names) == LATEST_VERSION
    assert all(name.startswith(f"m{i:03d}_") for i, name in enumerate(names, start=1))


@pytest.mark.parametrize("start", range(LATEST_VERSION + 1))
def test_migrating_from_each_earlier_version_gives_the_fresh_schema_and_keeps_data(tmp_path: Path, start: int) -> None:
    db = tmp_path / "old.db"
    engine = open_database(db)
    migrate(engine, upto=start)
    assert len(applied_migrations(engine)) == start
    engine.dispose()
    old_shares = []
    if start >= 1:
        for n, reason in enumerate(["eos", "length", "cancelled"]):
            share_id, token = f"{n}" * 22, f"token-{n}"
            old_shares.append((share_id, token, insert_share_as(start, db, share_id, token, reason)))

    store = ShareStore.open(db)  # migrates to the latest version
    assert schema_of(db) == fresh_schema(tmp_path)
    assert applied_migrations(store.database) == [m.__name__ for m in MIGRATIONS]
    for share_id, _token, record in old_shares:
        assert store.get(share_id).to_dict() == record
        with store.database.connect() as conn:
            query = text("SELECT finish_reason, app_version FROM shares WHERE id = :i")
            row = conn.execute(query, {"i": share_id}).one()
        assert tuple(row) == (record["finish_reason"], "0.0.9")  # m002 backfilled the new columns
    if old_shares:
        share_id, token, _ = old_shares[0]
        store.delete(share_id, token)  # old tokens still work
    assert store.get(store.create(make_generation()).id)
    store.close()


def test_orm_models_match_the_migrated_schema(tmp_path: Path) -> None:
    fresh_schema(tmp_path)
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        for table in Base.metadata.sorted_tables:
            columns = {row[1]: (row[3] == 1, row[5] > 0) for row in conn.execute(f"PRAGMA table_info({table.name})")}
            expected = {c.name: (not c.nullable, c.primary_key) for c in table.columns}
            assert columns == expected, table.name
            indexes = {row[1] for row in conn.execute(f"PRAGMA index_list({table.name})") if row[3] == "c"}
            assert indexes == {index.name for index in table.indexes}, table.name


def test_the_migration_ledger_has_the_shape_migrate_writes(tmp_path: Path) -> None:
    """schema_migrations has no ORM model (only migrations.py touches it, in SQL), so its shape is checked here."""
    fresh_schema(tmp_path)
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {row[1]: (row[2], row[3] == 1, row[5] > 0)
                   for row in conn.execute("PRAGMA table_info(schema_migrations)")}
        names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY applied_at, name")]
    assert tables == {table.name for table in Base.metadata.sorted_tables} | {"schema_migrations"}
    assert columns == {"name": ("TEXT", True, True), "applied_at": ("TEXT", True, False)}
    assert names == [m.__name__ for m in MIGRATIONS]


def test_a_database_from_a_newer_version_is_refused_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    engine = open_database(db)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_migrations VALUES ('m999_from_the_future', '2030-01-01T00:00:00+00:00')"))
    with pytest.raises(StoreError, match="newer version"):
        migrate(engine)
    engine.dispose()


def test_two_stores_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    import threading

    db = tmp_path / "race.db"
    stores: list[ShareStore] = []
    threads = [threading.Thread(target=lambda: stores.append(ShareStore.open(db))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores) == 4
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == LATEST_VERSION
    for store in stores:
        assert applied_migrations(store.database) == [m.__name__ for m in MIGRATIONS]
        store.close()
