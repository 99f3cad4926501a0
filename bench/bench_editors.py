"""What an editor route adds over the engine alone: time to first token and total, p50 and p95.

The app is `python app.py` in its own process (nano-starcoder in its engine process, attribution on), paused
(SIGSTOP) while the baseline runs. One hole, greedy, N tokens (64 by default), the fill's own end rule off so
every path generates the same tokens; interleaved round by round:
  engine      the backend's own stream of the prompt the fill builds (``Backend.stream``), in this process on a
              playground of its own: the engine process and its pipe, nothing of the service or the web edge.
              This is the baseline.
  openai      POST /v1/completions {"prompt", "suffix", "stream": true}
  infill      POST /infill (llama.cpp's body, "stream": true)
  tgi         POST /generate_stream (TGI's body)
  rest        POST /api/generate {"mode": "fill", "stream": true}: the app's own API, for comparison
For each: first token = request sent → first non-empty text; total = request sent → the stream's end (the
engine: its Finished event; a route: its last event, after the record, attribution included, is made).
Overhead = the median, over rounds, of the route's time minus the engine's in the same round (paired: the
machine's drift from round to round cancels). Target: below 10 ms at p50, first token and total.

    .venv/bin/python bench/bench_editors.py [--tokens 64] [--rounds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402

from bench.app_clients import AppProcess  # noqa: E402
from playground.backends.base import Chunk  # noqa: E402
from playground.bootstrap import build_playground  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.service import Playground  # noqa: E402

PREFIX = "import os\n\n\ndef list_python_files(folder):\n    found = []\n    for name in os.listdir(folder):\n        "
SUFFIX = "\n    return sorted(found)\n"
Timing = tuple[float, float]  # (first token s, total s)


def engine_path(playground: Playground, tokens: int) -> Callable[[], Timing]:
    plan = playground.plan("fill", None, {"prefix": PREFIX, "suffix": SUFFIX}, _params(tokens))
    backend = plan.slot.require_backend()

    def run() -> Timing:
        start, first = time.perf_counter(), None
        for event in backend.stream(plan.prepared.prompt, plan.params, threading.Event()):
            if first is None and isinstance(event, Chunk) and event.text:
                first = time.perf_counter() - start
        return first or float("nan"), time.perf_counter() - start

    return run


def _params(tokens: int) -> dict[str, object]:
    return {"max_new_tokens": tokens, "temperature": 0, "end_at_scope": False, "stop_loops": False}


def route_path(client: httpx.Client, url: str, body: dict[str, object],
               text_of: Callable[[dict], str]) -> Callable[[], Timing]:
    def run() -> Timing:
        start, first = time.perf_counter(), None
        with client.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if first is None and line.startswith("data: {") and text_of(json.loads(line[6:])):
                    first = time.perf_counter() - start
        return first or float("nan"), time.perf_counter() - start

    return run


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-editors-")), attribution=False)
    playground, _ = build_playground(settings, wait=True)
    os.environ["PLAYGROUND_GENERATE_PER_MINUTE"] = "0"  # a benchmark's hundreds of requests are not abuse
    server = AppProcess(None)
    while httpx.get(server.url + "/api/health").json().get("attribution") != "ready":
        time.sleep(0.5)  # the default attribution index builds on first start
    client = httpx.Client(timeout=120)
    greedy = {"temperature": 0, "end_at_scope": False, "stop_loops": False}
    paths = {
        "engine": engine_path(playground, args.tokens),
        "openai": route_path(client, server.url + "/v1/completions",
                             {"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": args.tokens, "stream": True, **greedy},
                             lambda e: e["choices"][0]["text"]),
        "infill": route_path(client, server.url + "/infill",
                             {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": args.tokens,
                              "stream": True, **greedy}, lambda e: e.get("content", "")),
        "rest": route_path(client, server.url + "/api/generate",
                           {"mode": "fill", "prefix": PREFIX, "suffix": SUFFIX, "stream": True,
                            "params": _params(args.tokens)}, lambda e: e.get("delta", "")),
        "tgi": route_path(client, server.url + "/generate_stream",
                          {"inputs": f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>",
                           "parameters": {"max_new_tokens": args.tokens, "do_sample": False, "end_at_scope": False,
                                          "stop_loops": False}},
                          lambda e: e["token"]["text"]),
    }
    timings: dict[str, list[Timing]] = {name: [] for name in paths}
    names = list(paths)
    for round_ in range(args.rounds + 1):  # the first round warms each path and is not counted
        # The engine first (the app paused), then the routes in a turning order: the first request after the
        # app resumes pays for waking it, and no one route should always be the one that pays.
        routes = names[1:]
        for name in ["engine", *routes[round_ % len(routes):], *routes[:round_ % len(routes)]]:
            run = paths[name]
            if name == "engine":
                server.pause()
            timing = run()
            server.resume()
            if round_:
                timings[name].append(timing)
    client.close()
    server.stop()
    playground.shutdown()
    report(timings, args)


def report(timings: dict[str, list[Timing]], args: argparse.Namespace) -> None:
    summary: dict[str, dict[str, float]] = {}
    for name, runs in timings.items():
        firsts, totals = [t[0] * 1000 for t in runs], [t[1] * 1000 for t in runs]
        summary[name] = {"first_p50_ms": statistics.median(firsts), "first_p95_ms": percentile(firsts, 95),
                         "total_p50_ms": statistics.median(totals), "total_p95_ms": percentile(totals, 95)}
    engine = timings["engine"]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {os.cpu_count()} cores · "
          f"{args.tokens} tokens · {args.rounds} rounds")
    print(f"{'path':8} {'first p50':>10} {'first p95':>10} {'total p50':>10} {'total p95':>10}"
          f" {'+first p50':>11} {'+total p50':>11}")
    for name, row in summary.items():
        extra = tuple(statistics.median((t[k] - e[k]) * 1000 for t, e in zip(timings[name], engine, strict=True))
                      for k in (0, 1))
        row.update(first_overhead_p50_ms=extra[0], total_overhead_p50_ms=extra[1])
        print(f"{name:8} {row['first_p50_ms']:10.1f} {row['first_p95_ms']:10.1f} {row['total_p50_ms']:10.1f}"
              f" {row['total_p95_ms']:10.1f} {extra[0]:11.1f} {extra[1]:11.1f}")
    worst = max(max(r["first_overhead_p50_ms"], r["total_overhead_p50_ms"]) for n, r in summary.items()
                if n != "engine")
    print(f"largest p50 overhead over the engine: {worst:.1f} ms (target < 10 ms): {'met' if worst < 10 else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
