"""Share latency over HTTP: create (POST /api/shares) and open (GET /api/shares/<id>) with 16 concurrent clients.

    python bench/bench_share_http.py [--clients 16] [--per-client 50] [--json out.json]

Runs the real app in-process on a fake backend (generation is not what is
measured), SQLite on local disk in WAL mode, rate limits off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.backends.fake import FakeBackend  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.config_types import RateLimits  # noqa: E402
from playground.registry import ModelSpec  # noqa: E402
from playground.service import Playground
from playground.slots import ModelSlot  # noqa: E402
from playground.store import ShareStore  # noqa: E402
from playground.tech_assistant import load_tech_assistant  # noqa: E402
from support.servers import serve  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, limits=RateLimits(0, 0, 0))
    slot = ModelSlot(ModelSpec("fake", "fake", 2048), FakeBackend(), concurrency=args.clients)
    playground = Playground(settings, {"fake": slot}, load_tech_assistant(), ShareStore.open(settings.database))
    server = serve(playground)
    total = args.clients * args.per_client
    with httpx.Client(base_url=server.url) as client:
        ids = [client.post("/api/generate", json={"mode": "complete", "prompt": "x"}).json()["id"] for _ in range(total)]

    def work(chunk: list[str]) -> tuple[list[float], list[float]]:
        creates, opens = [], []
        with httpx.Client(base_url=server.url) as client:
            for generation_id in chunk:
                began = time.perf_counter()
                share_id = client.post("/api/shares", json={"generation_id": generation_id}).json()["id"]
                creates.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                assert client.get(f"/api/shares/{share_id}").status_code == 200
                opens.append((time.perf_counter() - began) * 1000)
        return creates, opens

    chunks = [ids[i :: args.clients] for i in range(args.clients)]
    began = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        results = list(pool.map(work, chunks))
    wall = time.perf_counter() - began
    server.stop()
    creates = [v for c, _ in results for v in c]
    opens = [v for _, o in results for v in o]
    result = {
        "clients": args.clients, "shares": total, "wall_s": round(wall, 2),
        "create_ms_p50": round(statistics.median(creates), 1), "create_ms_p95": round(percentile(creates, 0.95), 1),
        "open_ms_p50": round(statistics.median(opens), 1), "open_ms_p95": round(percentile(opens, 0.95), 1),
        "creates_per_s": round(total / wall, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
