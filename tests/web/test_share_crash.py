"""Crash durability: kill -9 the real app while it writes shares; every link it returned must survive."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from support.servers import free_port, wait_healthy
from tests.conftest import REPO

ROUNDS = 4


def start_app(data_dir, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "app.py", "--backend", "fake", "--port", str(port), "--data-dir", str(data_dir),
         "--share-create-per-minute", "0", "--share-lookup-per-minute", "0", "--log-level", "WARNING"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", 90, process)
    except RuntimeError:
        process.kill()
        raise
    return process


def share_until_killed(url: str, acknowledged: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            try:
                record = client.post("/api/generate", json={"mode": "complete", "prompt": "x"}).json()
                created = client.post("/api/shares", json={"generation_id": record["id"]})
                if created.status_code == 201:
                    acknowledged.append(created.json()["id"])
            except (httpx.HTTPError, KeyError, ValueError):
                return  # the server died under us


@pytest.mark.slow
def test_kill_minus_nine_during_share_writes_loses_nothing(tmp_path):
    rng = random.Random(1234)
    acknowledged: list[str] = []
    for _ in range(ROUNDS):
        port = free_port()
        app = start_app(tmp_path, port)
        stop = threading.Event()
        writers = [threading.Thread(target=share_until_killed, args=(f"http://127.0.0.1:{port}", acknowledged, stop))
                   for _ in range(4)]
        for writer in writers:
            writer.start()
        time.sleep(rng.uniform(0.5, 2.0))
        app.send_signal(signal.SIGKILL)
        app.wait()
        stop.set()
        for writer in writers:
            writer.join(timeout=10)
    assert len(acknowledged) > 20

    with sqlite3.connect(tmp_path / "playground.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    port = free_port()
    app = start_app(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            missing = [i for i in acknowledged if client.get(f"/api/shares/{i}").status_code != 200]
    finally:
        app.kill()
        app.wait()
    assert missing == []
