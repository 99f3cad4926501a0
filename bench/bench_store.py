"""Share store benchmark: WAL + synchronous=NORMAL against a rollback journal + FULL, in one run.

For each configuration, on a fresh database file:
  - create throughput and latency with 1 writer thread,
  - create throughput and latency with 16 writer threads (the issue's target:
    >= 2,000 commits/s with p99 <= 25 ms on a local disk),
  - get latency for random existing shares.
Each phase runs for ``--seconds`` (default 2), so the whole run takes ~15 s.

    .venv/bin/python bench/bench_store.py [--seconds 2] [--dir /path/on/the/disk/to/test]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from playground.record import Generation  # noqa: E402
from playground.store import ShareStore  # noqa: E402
from playground.store.database import JournalChoice  # noqa: E402

CONFIGS: list[tuple[str, JournalChoice]] = [("WAL/NORMAL", "wal"), ("DELETE/FULL", "delete")]


@dataclass
class Phase:
    ops: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def sample_generation(i: int) -> Generation:
    """A realistic record: a few KB of prompt and output, like a typical completion share."""
    return Generation.from_dict({
        "id": f"gen-{i}", "mode": "complete", "model": "bigcode/starcoder2-3b",
        "created_at": "2026-11-25T18:40:00+00:00", "app_version": "0.1.0", "inputs": {"prompt": "def quicksort(xs):\n" * 20},
        "raw_prompt": "def quicksort(xs):\n" * 20, "prompt_version": None,
        "params": {"temperature": 0.2, "top_p": 0.95, "max_new_tokens": 256, "seed": i},
        "backend": {"kind": "local", "dtype": "bfloat16", "revision": "0123abcd"}, "text": "    return xs\n" * 60,
        "finish_reason": "eos", "usage": {"prompt_tokens": 120, "completion_tokens": 256},
        "timings": {"ttft_ms": 40.0, "total_ms": 2100.0, "tokens_per_s": 122.0},
    })


def run_writers(store: ShareStore, threads: int, seconds: float, ids: list[str]) -> Phase:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def writer(n: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            created = store.create(sample_generation(i))
            latencies[n].append((time.perf_counter() - started) * 1000)
            with lock:
                ids.append(created.id)
            i += 1

    began = time.perf_counter()
    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flat = [x for per in latencies for x in per]
    return Phase(len(flat), time.perf_counter() - began, flat)


def run_reads(store: ShareStore, seconds: float, ids: list[str]) -> Phase:
    rng = random.Random(0)
    latencies: list[float] = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        share_id = rng.choice(ids)
        started = time.perf_counter()
        store.get(share_id)
        latencies.append((time.perf_counter() - started) * 1000)
    return Phase(len(latencies), time.perf_counter() - began, latencies)


def bench(directory: Path, label: str, journal: JournalChoice, seconds: float) -> dict[str, Phase]:
    db = directory / f"bench-{journal}.db"
    store = ShareStore.open(db, journal=journal)
    ids: list[str] = []
    results = {
        "create x1": run_writers(store, 1, seconds, ids),
        "create x16": run_writers(store, 16, seconds, ids),
        "get": run_reads(store, seconds, ids),
    }
    store.close()
    for phase, result in results.items():
        print(f"{label:12} {phase:11} {result.per_s:9.0f}/s  p50 {result.pct(50):7.2f} ms  "
              f"p95 {result.pct(95):7.2f} ms  p99 {result.pct(99):7.2f} ms  (n={result.ops})")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each phase")
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"databases in {tmp}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        runs = {label: bench(Path(tmp), label, journal, args.seconds) for label, journal in CONFIGS}
    wal, full = (runs[label] for label, _ in CONFIGS)
    print("\nWAL/NORMAL vs DELETE/FULL:")
    for phase in ("create x1", "create x16"):
        print(f"  {phase:11} throughput x{wal[phase].per_s / full[phase].per_s:.1f}, "
              f"p99 latency x{full[phase].pct(99) / wal[phase].pct(99):.1f} lower")
    print(f"  get         p50 latency x{full['get'].pct(50) / wal['get'].pct(50):.2f} lower")
    target = wal["create x16"]
    met = target.per_s >= 2000 and target.pct(99) <= 25
    print(f"\ntarget (16 writers, WAL): >= 2000 commits/s with p99 <= 25 ms: {'met' if met else 'NOT met'} "
          f"({target.per_s:.0f}/s, p99 {target.pct(99):.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
