"""ShareStore behaviour: ids, enumeration, deletion tokens, backup, journal and schema, and the CLI."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import string
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from playground.errors import ShareForbiddenError, ShareNotFoundError, StoreError
from playground.store import MIGRATIONS, NOT_FOUND_MESSAGE, ShareStore, is_share_id
from playground.web.errors import status_of
from tests.store.store_factories import journal_mode, make_generation

REPO = Path(__file__).resolve().parents[2]


def not_found_signature(store: ShareStore, share_id: str) -> tuple[type, str, int, str]:
    with pytest.raises(ShareNotFoundError) as caught:
        store.get(share_id)
    error = caught.value
    return type(error), str(error), status_of(error), error.kind


def test_ids_and_tokens_are_long_random_and_url_safe(store: ShareStore) -> None:
    created = [store.create(make_generation()) for _ in range(50)]
    alphabet = set(string.ascii_letters + string.digits + "-_")
    for share in created:
        assert len(share.id) == 22 and set(share.id) <= alphabet  # 22 base64 chars = 132 >= 128 bits
        assert len(share.delete_token) == 43 and set(share.delete_token) <= alphabet
        assert share.created_at.tzinfo is not None and share.created_at.utcoffset() == UTC.utcoffset(None)
    assert len({s.id for s in created}) == 50 and len({s.delete_token for s in created}) == 50


def test_get_share_reports_the_share_time(store: ShareStore) -> None:
    created = store.create(make_generation())
    share = store.get_share(created.id)
    assert share.id == created.id and share.created_at == created.created_at
    assert share.generation == store.get(created.id)


def test_delete_token_is_stored_only_as_a_hash(store: ShareStore, db_path: Path) -> None:
    created = store.create(make_generation())
    raw = db_path.read_bytes() + (db_path.with_name(db_path.name + "-wal").read_bytes())
    assert created.delete_token.encode() not in raw
    with sqlite3.connect(db_path) as conn:
        (stored,) = conn.execute("SELECT delete_token_hash FROM shares WHERE id = ?", (created.id,)).fetchone()
    assert stored == hashlib.sha256(created.delete_token.encode()).hexdigest()


def test_enumerating_thousands_of_ids_finds_nothing_and_every_miss_looks_the_same(store: ShareStore) -> None:
    for _ in range(20):
        store.create(make_generation())
    deleted = store.create(make_generation())
    store.delete(deleted.id, deleted.delete_token)
    guesses = [secrets.token_urlsafe(16) for _ in range(5000)]
    malformed = ["", "x", "../etc/passwd", "a" * 21, "a" * 23, "A" * 22 + "\n", "\ud800" * 22, "%2e" * 8, "🙂" * 22]
    signatures = {not_found_signature(store, guess) for guess in [*guesses, *malformed, deleted.id]}
    assert signatures == {(ShareNotFoundError, NOT_FOUND_MESSAGE, 404, "not_found")}


def test_delete_needs_the_right_token(store: ShareStore) -> None:
    generation = make_generation()
    created = store.create(generation)
    other = store.create(make_generation())
    for missing in (None, ""):
        with pytest.raises(ShareForbiddenError) as caught:
            store.delete(created.id, missing)
        assert status_of(caught.value) == 403 and "delete token" in caught.value.message
    for wrong in ("wrong", other.delete_token, created.delete_token[:-1], created.delete_token + "x", "\ud800"):
        with pytest.raises(ShareForbiddenError) as caught:
            store.delete(created.id, wrong)
        assert "does not match" in caught.value.message
    assert store.get(created.id) == generation  # still there, untouched

    store.delete(created.id, created.delete_token)
    assert not_found_signature(store, created.id) == not_found_signature(store, secrets.token_urlsafe(16))
    with pytest.raises(ShareNotFoundError):
        store.delete(created.id, created.delete_token)  # a second delete: gone, as if it never existed
    assert store.get(other.id).id  # the neighbour is unaffected


def test_delete_of_unknown_or_malformed_id_is_not_found(store: ShareStore) -> None:
    for share_id in (secrets.token_urlsafe(16), "nope"):
        with pytest.raises(ShareNotFoundError):
            store.delete(share_id, "some-token")


def test_deleted_text_is_wiped_from_the_file(store: ShareStore, db_path: Path) -> None:
    marker = "SECRET-" + secrets.token_hex(8)
    created = store.create(make_generation(text=marker))
    store.delete(created.id, created.delete_token)
    store.close()  # checkpoints the WAL into the main file
    assert marker.encode() not in db_path.read_bytes()


def test_is_share_id() -> None:
    assert is_share_id(secrets.token_urlsafe(16))
    assert not is_share_id(None) and not is_share_id(123) and not is_share_id("a" * 22 + "=")


def test_backup_copies_every_share_with_integrity(store: ShareStore, tmp_path: Path) -> None:
    created = [store.create(make_generation(text=f"share {i} \x00 ☃")) for i in range(40)]
    store.delete(created[0].id, created[0].delete_token)
    target = tmp_path / "backups" / "shares-copy.db"
    result = store.backup(target)
    assert result.shares == 39 and result.path == target and target.exists()
    assert not target.with_name(target.name + ".partial").exists()
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    copy = ShareStore.open(target)
    for share in created[1:]:
        assert copy.get(share.id) == store.get(share.id)
    assert not_found_signature(copy, created[0].id)[0] is ShareNotFoundError
    copy.close()


def test_backup_refuses_to_overwrite_the_live_database(store: ShareStore, db_path: Path) -> None:
    with pytest.raises(StoreError, match="live share database"):
        store.backup(db_path)


def test_a_new_store_is_in_wal_mode_with_every_migration_recorded(store: ShareStore, db_path: Path) -> None:
    assert journal_mode(db_path) == "wal"
    with sqlite3.connect(db_path) as conn:
        recorded = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY applied_at, name")]
    assert recorded == [m.__name__ for m in MIGRATIONS]


def test_cli_migrate_backup_and_schema(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env_python = [sys.executable, "-m", "playground.store"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*env_python, *args], cwd=REPO, capture_output=True, text=True, timeout=60)

    migrated = run("migrate", "--db", str(db))
    assert migrated.returncode == 0 and f"applied {len(MIGRATIONS)} migration(s)" in migrated.stdout
    store = ShareStore.open(db)
    created = store.create(make_generation())
    backed_up = run("backup", "--db", str(db), "--out", str(tmp_path / "copy.db"))
    assert backed_up.returncode == 0 and "backed up 1 share(s)" in backed_up.stdout
    assert ShareStore.open(tmp_path / "copy.db").get(created.id) == store.get(created.id)
    schema = run("schema")
    assert schema.returncode == 0 and "CREATE TABLE shares" in schema.stdout
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    broken = run("migrate", "--db", str(tmp_path / "junk.db"))
    assert broken.returncode == 1 and "not a SQLite database" in broken.stderr and "Traceback" not in broken.stderr
    store.close()


def test_a_record_this_version_cannot_read_gives_a_clear_error(store: ShareStore, db_path: Path) -> None:
    created = store.create(make_generation())
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE shares SET record_json = ? WHERE id = ?", ('{"unknown_field": 1}', created.id))
    with pytest.raises(StoreError, match="cannot read") as caught:
        store.get(created.id)
    assert not isinstance(caught.value, ShareNotFoundError)
