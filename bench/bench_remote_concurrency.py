"""Remote-engine concurrency benchmark: 1 user against N users on a fixed-rate engine.

The TGI STAND-IN (support/standins/tgi_standin.py, a protocol stand-in for a
server that cannot run here) streams every request at a fixed rate, say 50
tokens/s for 100 tokens, like an engine with continuous batching and room to
spare. If the client side adds no serialisation, N concurrent users finish in
about the time one does. The script prints

* the wall time of 1 user and of N users, and their ratio (target <= 1.2);
* the latency the client adds per token: when each chunk reached the caller,
  minus when the stand-in sent that token (median and p95), and the first
  token's delay after the request was sent.

``measure(run_one, users)`` takes any ``run_one(label) -> RunResult``; the label
must appear in the prompt the engine receives so client and server timings
can be paired. ``backend_runner`` drives TgiBackend directly; a runner that
goes through the whole app over HTTP can be passed the same way.

    .venv/bin/python bench/bench_remote_concurrency.py [--users 8] [--rate 50] [--tokens 100] [--in-process] [--through-app]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from bench.app_clients import AppProcess  # noqa: E402
from playground.backends.base import Chunk, Finished  # noqa: E402
from playground.backends.tgi import TgiBackend  # noqa: E402
from playground.params import GenerationParams  # noqa: E402
from playground.prompt import Prompt  # noqa: E402
from playground.registry import ModelSpec  # noqa: E402

TARGET_RATIO = 1.2


@dataclass
class RunResult:
    label: str
    sent: float  # time.monotonic() when the request was made
    arrivals: list[float] = field(default_factory=list)  # monotonic time each chunk reached the caller
    finish: str = ""


@dataclass
class Measurement:
    users: int
    wall_s: float
    runs: list[RunResult]


def measure(run_one: Callable[[str], RunResult], users: int) -> Measurement:
    """Start ``users`` runs at once (behind a barrier) and time until the last ends."""
    barrier = threading.Barrier(users + 1)
    results: list[RunResult] = []
    errors: list[BaseException] = []

    def user(index: int) -> None:
        barrier.wait()
        try:
            results.append(run_one(f"bench-{uuid.uuid4().hex[:12]}-{index}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {users} runs failed: {errors[0]!r}")
    return Measurement(users, wall, results)


def backend_runner(backend: TgiBackend, tokens: int) -> Callable[[str], RunResult]:
    """Run one generation straight through the backend, recording chunk arrival times."""
    params = GenerationParams(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)

    def run_one(label: str) -> RunResult:
        result = RunResult(label, time.monotonic())
        for event in backend.stream(Prompt.of(f"# {label}\ndef f():\n"), params, threading.Event()):
            if isinstance(event, Chunk):
                result.arrivals.append(time.monotonic())
            elif isinstance(event, Finished):
                result.finish = event.reason
        return result

    return run_one


def app_runner(url: str, tokens: int) -> Callable[[str], RunResult]:
    """Run one generation through the whole app: POST /api/generate with SSE, as a browser script would."""
    import httpx

    # One client made up front, as a browser already has its own: building an httpx client costs
    # ~50 ms of CPU, and eight built at once under this process's GIL added ~400 ms to the first
    # token this benchmark reported for the app (1.27 -> 1.04 for 8 users / 1).
    client = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=256))

    def run_one(label: str) -> RunResult:
        result = RunResult(label, time.monotonic())
        body = {"mode": "complete", "prompt": f"# {label}\ndef f():\n", "stream": True,
                "params": {"max_new_tokens": tokens, "temperature": 0, "repetition_penalty": 1.0, "stop_loops": False}}
        with client.stream("POST", "/api/generate", json=body) as response:
            for line in response.iter_lines():
                if line.startswith('data: {"delta"'):
                    result.arrivals.append(time.monotonic())
                elif line.startswith('data: {"done"'):
                    result.finish = json.loads(line[6:])["finish_reason"]
        return result

    return run_one


def added_latency_ms(
    runs: list[RunResult], streams: list[dict[str, Any]]
) -> tuple[list[float], list[float], list[float]]:
    """Per-token lag behind the engine's send and behind its schedule, and first-token delays, in ms."""
    lags, behind_schedule, firsts = [], [], []
    for run in runs:
        record = next((s for s in streams if run.label in s["prompt"]), None)
        if record is None or not run.arrivals:
            continue
        for sent, arrived in zip(record["token_times"], run.arrivals, strict=False):
            lags.append((arrived - sent) * 1000)
        for due, arrived in zip(record["scheduled"], run.arrivals, strict=False):
            behind_schedule.append((arrived - due) * 1000)
        firsts.append((run.arrivals[0] - run.sent) * 1000)
    return lags, behind_schedule, firsts


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)] if values else float("nan")


def report(one: Measurement, many: Measurement, streams: list[dict[str, Any]], rate: float, tokens: int) -> bool:
    ratio = many.wall_s / one.wall_s
    lags, behind_schedule, firsts = added_latency_ms(one.runs + many.runs, streams)
    print(f"engine schedule: {tokens} tokens at {rate:g} tok/s = {tokens / rate:.2f} s per user")
    print(f"1 user : wall {one.wall_s:.3f} s")
    print(f"{many.users} users: wall {many.wall_s:.3f} s")
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"ratio {many.users}/1: {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
    print(
        f"added latency per token (chunk at caller - token sent by engine): median {statistics.median(lags):.2f} ms, "
        f"p95 {_p95(lags):.2f} ms over {len(lags)} tokens"
    )
    print(
        f"chunk at caller behind the engine's schedule: median {statistics.median(behind_schedule):.2f} ms, "
        f"p95 {_p95(behind_schedule):.2f} ms"
    )
    print(f"first token after request: median {statistics.median(firsts):.1f} ms (engine schedule: {1000 / rate:.1f} ms)")
    finishes = {r.finish for r in one.runs + many.runs}
    if finishes != {"length"}:
        print(f"warning: unexpected finish reasons {finishes}")
    return ratio <= TARGET_RATIO


def _serve_app(engine_url: str, users: int) -> AppProcess:
    """The app in its own process, so the benchmark's client threads do not share its GIL."""
    return AppProcess(None, ["--backend", "tgi", "--endpoint", engine_url, "--model", "starcoder",
                             "--remote-concurrency", str(max(16, users)), "--generate-per-minute", "0"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="engine tokens per second, per request")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per generation")
    parser.add_argument("--in-process", action="store_true", help="run the stand-in in this process (shares the GIL)")
    parser.add_argument("--through-app", action="store_true", help="go through the whole app over HTTP (SSE)")
    args = parser.parse_args()

    from support.standins.common import StandinConfig, State, SubprocessServer, ThreadServer
    from support.standins.tgi_standin import create_app

    server: Any
    if args.in_process:
        state = State(StandinConfig(rate=args.rate))
        server = ThreadServer(create_app(state)).start()
        snapshot: Callable[[], dict[str, Any]] = state.snapshot
    else:
        server = SubprocessServer("support.standins.tgi_standin", args=["--rate", str(args.rate)], ready_path="/info")
        server.start()
        snapshot = server.snapshot
    try:
        spec = ModelSpec(id="starcoder", source="bigcode/starcoder", context_length=8192)
        backend = TgiBackend(spec, server.url, concurrency=max(16, args.users))
        app = _serve_app(server.url, args.users) if args.through_app else None
        run_one = app_runner(app.url, args.tokens) if app else backend_runner(backend, args.tokens)
        measure(run_one, 1)  # warm-up: imports, first connection
        one = measure(run_one, 1)
        many = measure(run_one, args.users)
        print("path:", "through the app (REST SSE)" if app else "TgiBackend directly")
        report(one, many, snapshot()["streams"], args.rate, args.tokens)
        backend.close()
        if app:
            app.stop()
    finally:
        server.stop() if args.in_process else server.kill()


if __name__ == "__main__":
    main()
