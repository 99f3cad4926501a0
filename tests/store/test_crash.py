"""Crash durability: SIGKILL a writing process at random moments, many times; nothing acknowledged is lost.

Each round starts ``_writer.py`` (a real process writing shares from several
threads), kills it with SIGKILL either mid-stream or during start-up and
migration, then checks ``PRAGMA integrity_check`` and that every id the
process printed (it prints only after the commit returned) still resolves.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playground.store import ShareStore
from tests.store.store_factories import stored_share_count

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROUNDS = 16


def run_and_kill(db: Path, rng: random.Random) -> list[str]:
    """One writer process, killed at a random moment; the ids it acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, str(HERE / "_writer.py"), str(db), "4"],
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    assert writer.stdout is not None
    lines: list[bytes] = []
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.0, 0.6))  # often lands during start-up or migration
    else:
        lines.append(writer.stdout.readline())  # blocks until writing is under way
        assert lines[0].endswith(b"\n"), "the writer died before writing anything"
        time.sleep(rng.uniform(0.0, 0.15))
    writer.send_signal(signal.SIGKILL)
    lines += writer.stdout.read().splitlines(keepends=True)  # what reached the pipe before the kill
    writer.wait(timeout=30)
    # A line cut off by the kill has no newline: it was not fully acknowledged.
    return [line.split()[0].decode() for line in lines if line.endswith(b"\n")]


@pytest.mark.timeout(180)
def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "shares.db"
    acknowledged: list[str] = []
    for round_number in range(ROUNDS):
        acknowledged += run_and_kill(db, rng)
        if not db.exists():
            continue  # killed before the database was created
        with sqlite3.connect(db) as conn:
            # Opening the database recovers the WAL just as the next app start would.
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"seed {seed} round {round_number}"
    assert len(acknowledged) > ROUNDS * 5, "the writer barely wrote; the kills did not land mid-stream"
    store = ShareStore.open(db)
    for share_id in acknowledged:
        assert store.get(share_id).text.startswith("writer "), f"seed {seed}: lost {share_id}"
    assert stored_share_count(db) >= len(acknowledged)
    store.close()
