"""Several ``python app.py`` replicas on one database, each in its own process, for tests and benchmarks.

Each replica is started the way a deployment starts it (flags only), on a free
port, with its own data folder, and is ready once ``/api/health`` answers 200.
``kill()`` is SIGKILL: the replica dies mid-whatever, as a crashed container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.servers import free_port

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Replica:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replica(flags: Sequence[str], env: dict[str, str] | None = None) -> Replica:
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="playground-replica-"))
    log = folder / "replica.log"
    command = [sys.executable, "app.py", "--port", str(port), "--data-dir", str(folder), *flags]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    return Replica(port, process, log)


def wait_healthy(replicas: Sequence[Replica], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(replicas)
    while waiting and time.monotonic() < deadline:
        for replica in list(waiting):
            if replica.process.poll() is not None:
                raise RuntimeError(f"replica on {replica.port} exited:\n{replica.log.read_text(errors='replace')}")
            try:
                if httpx.get(replica.url + "/api/health", timeout=2).status_code == 200:
                    waiting.remove(replica)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"{len(waiting)} replica(s) not healthy in {timeout_s:g} s")


@contextmanager
def running_replicas(count: int, flags: Sequence[str], env: dict[str, str] | None = None) -> Iterator[list[Replica]]:
    """``count`` replicas started together (they migrate the database together too), healthy."""
    replicas = [start_replica(flags, env) for _ in range(count)]
    try:
        wait_healthy(replicas)
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
