"""Many writer threads: no errors, and every acknowledged share is readable.

The threads are spread over several ShareStore instances on the same file, as
separate processes would be: each store queues its own threads on its lock,
and the stores contend through SQLite's own locking (BEGIN IMMEDIATE + busy
timeout), so both paths are exercised.
"""

from __future__ import annotations

import threading
from pathlib import Path

from playground.store import ShareStore
from tests.store.store_factories import make_generation, stored_share_count

THREADS = 32
PER_THREAD = 100
STORES = 4


def test_32_threads_x_100_shares_all_acknowledged_and_readable(tmp_path: Path) -> None:
    db = tmp_path / "shares.db"
    stores = [ShareStore.open(db) for _ in range(STORES)]
    for store in stores:  # each store's own connection runs in WAL, so readers never wait on writers
        with store.database.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    acknowledged: list[list[tuple[str, str]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        store = stores[n % STORES]
        try:
            start.wait()
            for i in range(PER_THREAD):
                text = f"thread {n} share {i}"
                created = store.create(make_generation(text=text))
                acknowledged[n].append((created.id, text))
                if i % 10 == 0:  # readers interleave with writers
                    assert store.get(created.id).text == text
        except BaseException as error:  # collected, so a failure names itself instead of hanging
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)

    every = [pair for per_thread in acknowledged for pair in per_thread]
    assert len(every) == THREADS * PER_THREAD
    assert len({share_id for share_id, _ in every}) == len(every)
    reader = stores[0]
    assert stored_share_count(db) == len(every)
    for share_id, text in every:
        assert reader.get(share_id).text == text
    for store in stores:
        store.close()
