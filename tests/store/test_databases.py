"""The store on both databases it supports, SQLite (the embedded default) and PostgreSQL (replicas):
the same migrations, shares, generations with their retention, and one share per generation under
concurrent writers; and each PostgreSQL failure a person can act on, said in one sentence."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from playground.errors import ConfigError, StoreError
from playground.store import MIGRATIONS, GenerationLog, ShareStore, applied_migrations, open_database
from playground.store.schema import Base
from tests.store.store_factories import make_generation


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_the_same_migrations_give_the_same_tables_on_both(url: str) -> None:
    store = ShareStore.open(url)
    assert applied_migrations(store.database) == [m.__name__ for m in MIGRATIONS]
    inspector = sqlalchemy.inspect(store.database)
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}
        assert {i["name"] for i in inspector.get_indexes(table.name)} == {i.name for i in table.indexes}
    store.close()


def test_shares_round_trip_on_both(url: str) -> None:
    store = ShareStore.open(url)
    record = make_generation()
    created = store.create(record)
    assert store.get(created.id).to_dict() == record.to_dict()
    assert store.create(record).id == created.id  # shared again: the same share, no new token
    store.delete(created.id, created.delete_token)
    store.close()


def test_concurrent_writers_make_one_share_per_generation(url: str) -> None:
    """Separate stores stand for separate replicas: only the database can keep them to one share."""
    stores = [ShareStore.open(url) for _ in range(4)]
    record = make_generation()
    ids: list[str] = []
    barrier = threading.Barrier(len(stores))

    def share(store: ShareStore) -> None:
        barrier.wait()
        ids.append(store.create(record).id)

    threads = [threading.Thread(target=share, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    for store in stores:
        store.close()


def test_generations_are_kept_for_the_retention_period_then_expire(url: str) -> None:
    store = ShareStore.open(url)
    now = [datetime(2026, 12, 6, 12, 0, tzinfo=UTC)]
    log = GenerationLog(store, timedelta(hours=24), clock=lambda: now[0])
    old, fresh = make_generation(), make_generation()
    assert log.save(old)
    now[0] += timedelta(hours=20)
    assert log.save(fresh)
    shared = store.create(old)
    assert log.get(old.id).to_dict() == old.to_dict()
    now[0] += timedelta(hours=5)  # old is 25 hours old, fresh 5
    assert log.get(old.id) is None and log.get(fresh.id) is not None  # expired reads as gone at once
    assert log.expire() == 1
    assert log.get(fresh.id) is not None
    assert store.get(shared.id).id == old.id  # a share keeps its own copy: expiry never touches it
    forever = GenerationLog(store, None, clock=lambda: now[0] + timedelta(days=999))
    assert forever.get(fresh.id) is not None and forever.expire() == 0
    store.close()


# -- PostgreSQL's failures, each one sentence ---------------------------------------------------------


def test_a_missing_driver_is_a_sentence_not_a_traceback() -> None:
    with pytest.raises(ConfigError, match="needs the 'pg8000' driver.*postgresql\\+psycopg://"):
        open_database("postgresql+pg8000://user:secret@127.0.0.1/db")


def test_a_refused_password_and_an_unreachable_server(postgres) -> None:
    wrong = postgres.url.replace(":playground-test-password@", ":wrong@")
    store = ShareStore.open(wrong)  # starts: sharing fails with advice, generation goes on
    with pytest.raises(StoreError, match="refused the app's user name or password"):
        store.create(make_generation())
    store.close()
    from support.servers import free_port

    nobody = ShareStore.open(f"postgresql+psycopg://postgres:x@127.0.0.1:{free_port()}/playground")
    with pytest.raises(StoreError, match="cannot be reached"):
        nobody.get("A" * 22)
    nobody.close()


def test_a_restarted_server_is_reconnected_without_restarting_the_app(postgres, postgres_url: str) -> None:
    store = ShareStore.open(postgres_url)
    created = store.create(make_generation())
    postgres.restart()
    assert store.get(created.id) is not None  # the pool replaced its dead connections unseen
    store.close()


# -- rate limits for all replicas together --------------------------------------------------------------


def test_shared_counts_hold_a_limit_across_processes(url: str) -> None:
    from playground.errors import RateLimitedError
    from playground.store.limits import SharedCounts
    from playground.web.limits import RateLimiter

    store = ShareStore.open(url)
    other = ShareStore.open(url)  # a second replica on the same database
    now = [1_800_000_000.0]  # a minute's start
    a = RateLimiter(5, "generations", shared=SharedCounts(store.database, clock=lambda: now[0]))
    b = RateLimiter(5, "generations", shared=SharedCounts(other.database, clock=lambda: now[0]))
    for limiter in (a, b, a, b, a):
        limiter.hit("203.0.113.7")
    with pytest.raises(RateLimitedError, match="5 a minute"):
        b.hit("203.0.113.7")
    a.hit("198.51.100.1")  # another client has its own count
    now[0] += 90  # half of the last minute still counts: 6 * 0.5 = 3 of 5
    a.hit("203.0.113.7")
    b.hit("203.0.113.7")
    with pytest.raises(RateLimitedError):
        a.hit("203.0.113.7")
    with store.database.connect() as conn:  # clients are kept as hashes, never as addresses
        keys = [row[0] for row in conn.execute(sqlalchemy.text("SELECT key FROM rate_windows"))]
    assert keys and not any("203.0.113.7" in key for key in keys)
    store.close()
    other.close()


def test_shared_counts_let_requests_through_when_the_database_is_down() -> None:
    from playground.store.limits import SharedCounts
    from support.servers import free_port

    down = open_database(f"postgresql+psycopg://postgres:x@127.0.0.1:{free_port()}/playground")
    assert SharedCounts(down).hit("generations", "203.0.113.7") == 0.0


def test_a_full_disk_on_the_server_is_said_as_such() -> None:
    import psycopg

    from playground.errors import StoreFullError
    from playground.store.faults import translate

    full = translate(psycopg.errors.DiskFull("could not extend file: No space left on device"))
    assert isinstance(full, StoreFullError) and "full" in full.message and "Generation" in full.message
    shutdown = translate(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
    assert "cannot be reached" in shutdown.message


def test_with_the_database_down_a_generation_still_comes_back_and_says_where_it_is_kept(tmp_path: Path) -> None:
    import httpx

    from playground.config import Settings
    from support.servers import free_port, serve
    from tests.conftest import fake_playground

    down = f"postgresql+psycopg://postgres:x@127.0.0.1:{free_port()}/playground"
    server = serve(fake_playground(Settings(data_dir=tmp_path, database_url=down, limits_store="memory")))
    try:
        response = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"}, timeout=30)
        assert response.status_code == 200
        assert any("Kept on this server only" in notice for notice in response.json()["notices"])
        shared = httpx.post(server.url + "/api/shares", json={"generation_id": response.json()["id"]}, timeout=30)
        assert shared.status_code == 503 and "cannot be reached" in shared.json()["error"]["message"]
    finally:
        server.stop()
