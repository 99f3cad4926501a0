"""Replicas on one database, measured side by side in one run.

1. The store: share creation with 16 writer threads for ``--seconds``, on SQLite (WAL, synchronous=NORMAL,
   a local file: the embedded default) and on PostgreSQL (Debian's, with its defaults: fsync and
   synchronous_commit on; started in a temporary folder, the client over TCP on this machine):
   commits/s, p50 and p95. Then what the limits across replicas cost per request: one
   ``SharedCounts.hit`` on each database, against the in-process limiter.
2. Through nginx (the shipped deploy/nginx/playground.conf): requests/s of ``POST /api/generate``
   (complete, 8 tokens) from 16 concurrent clients for ``--seconds``, with 1 replica and with 3, all on
   PostgreSQL, in front of the TGI stand-in answering at full speed. On a machine with few cores every
   process shares them: the ratio says how much of the web side scales, bounded by the cores.

    .venv/bin/python bench/bench_replicas.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from bench.bench_store import Phase, run_writers  # noqa: E402
from playground.store import ShareStore  # noqa: E402
from playground.store.limits import SharedCounts  # noqa: E402
from playground.web.limits import RateLimiter  # noqa: E402
from support import nginx  # noqa: E402
from support.postgres import start_postgres  # noqa: E402
from support.replicas import running_replicas  # noqa: E402
from support.standins.fixtures import subprocess_tgi  # noqa: E402


def store_phase(url: str, label: str, seconds: float) -> Phase:
    store = ShareStore.open(url)
    phase = run_writers(store, 16, seconds, [])
    store.close()
    print(f"  {label:28} {phase.per_s:8.0f} commits/s  p50 {phase.pct(50):6.2f} ms  p95 {phase.pct(95):6.2f} ms")
    return phase


def limit_cost(url: str | None, label: str, calls: int = 2000) -> float:
    shared = SharedCounts(ShareStore.open(url).database) if url else None
    limiter = RateLimiter(10**9, "bench", shared=shared)
    times = []
    for i in range(calls):
        started = time.perf_counter()
        limiter.hit(f"client-{i % 50}")
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
    print(f"  {label:28} p50 {p50:6.3f} ms  p95 {p95:6.3f} ms per request")
    return p50


def http_phase(url: str, seconds: float, clients: int = 16) -> float:
    done = [0]
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    body = {"mode": "complete", "prompt": "def add(a, b):\n", "params": {"max_new_tokens": 8}}

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while time.perf_counter() < deadline:
                ok = http.post(url + "/api/generate", json=body).status_code == 200
                with lock:
                    done[0] += ok
                    errors[0] += not ok
    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = done[0] / (time.perf_counter() - began)
    return rate if not errors[0] else rate * -1  # negative: some requests failed (printed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC · {os.cpu_count()} cores")
    with start_postgres(durable=True) as postgres, tempfile.TemporaryDirectory() as tmp:
        print("share creation, 16 writers:")
        sqlite = store_phase(f"sqlite:///{tmp}/bench.db", "SQLite (WAL, local file)", args.seconds)
        pg = store_phase(postgres.url, "PostgreSQL (TCP, this machine)", args.seconds)
        print(f"  PostgreSQL / SQLite: commits/s x{pg.per_s / sqlite.per_s:.2f}, p95 x{pg.pct(95) / sqlite.pct(95):.2f}")
        print("a rate-limit check:")
        limit_cost(None, "in this process (memory)")
        limit_cost(f"sqlite:///{tmp}/limits.db", "shared, SQLite")
        limit_cost(postgres.url, "shared, PostgreSQL")
        flags_for = ["--backend", "tgi", "--model", "starcoder", "--database-url", postgres.url, "--attribution",
                     "off", "--forwarded-for", "1", "--generate-per-minute", "0", "--log-level", "WARNING"]
        with subprocess_tgi() as engine:
            rates = {}
            for count in (1, 3):
                with running_replicas(count, [*flags_for, "--endpoint", engine.url]) as replicas, \
                        nginx.running_nginx([r.address for r in replicas]) as proxy:
                    http_phase(proxy.url, 1.0)  # warm
                    rates[count] = http_phase(proxy.url, args.seconds)
                    print(f"through nginx, {count} replica(s): {abs(rates[count]):7.1f} requests/s"
                          + ("  (some failed)" if rates[count] < 0 else ""))
            print(f"3 replicas / 1: x{abs(rates[3]) / abs(rates[1]):.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
