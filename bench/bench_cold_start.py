"""Cold start: `python app.py` to its first answer, against a bare Gradio hello-world, in one run.

Each trial launches a fresh interpreter:
  app    `python app.py --port P` (nano-starcoder, local backend, temp data dir); the clock runs
         from Popen to the first 200 of GET /api/live (the web server answers), to the first 200
         of GET /api/health (the model serves), then to the first successful POST /api/generate
         (a greedy 8-token completion) -- "the first answer". After it, the web process's own
         RSS (VmRSS of app.py, not of its engine process) is read.
         ``--engine both`` runs the app twice per trial: with the model in its engine process
         (the default) and in the web process (``--engine inprocess``, as before), side by side.
  hello  a temp script `gr.Interface(lambda x: x, "text", "text").launch(server_port=P2)`; the clock
         runs from Popen to the first 200 on "/", then to the first successful call through
         gradio_client (Client construction included).
With ``--backend tgi`` the app serves a remote engine instead (a TGI stand-in started once,
before the trials, in its own process): ``app.py --backend tgi --endpoint URL --model starcoder``.
That path must import neither torch nor transformers; its target is 1.3x the hello-world.
Trials are interleaved (app, hello, app, hello, ...) --trials times; medians and ratios printed.

    .venv/bin/python bench/bench_cold_start.py [--trials 3] [--backend local|tgi] [--engine process|inprocess|both]
                                               [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HELLO = 'import gradio as gr\n\ngr.Interface(lambda x: x, "text", "text").launch(server_port={port})\n'
LIMIT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", GRADIO_ANALYTICS_ENABLED="False",
               PLAYGROUND_DATA_DIR=data_dir, PLAYGROUND_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    return env


def poll(start: float, proc: subprocess.Popen, attempt) -> float:
    """Seconds since ``start`` at which ``attempt()`` first returns True."""
    last: Exception | None = None
    while time.perf_counter() - start < LIMIT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode} before answering")
        try:
            if attempt():
                return time.perf_counter() - start
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"no answer within {LIMIT_S:.0f} s (last error: {last!r})")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def trial_app(tmp: Path, extra_args: list[str]) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(dir=tmp, prefix="data-")
    log = open(tmp / f"app-{port}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *extra_args], cwd=ROOT,
                            env=child_env(data_dir), stdout=log, stderr=subprocess.STDOUT)
    try:
        live = poll(start, proc, lambda: httpx.get(url + "/api/live", timeout=2).status_code == 200)
        health = poll(start, proc, lambda: httpx.get(url + "/api/health", timeout=2).status_code == 200)
        body = {"mode": "complete", "prompt": "def add(a, b):\n", "params": {"max_new_tokens": 8, "temperature": 0}}

        def generate() -> bool:
            response = httpx.post(url + "/api/generate", json=body, timeout=30)
            return response.status_code == 200 and "text" in response.json()

        answer = poll(start, proc, generate)
        rss = web_rss_mb(proc.pid)
    finally:
        stop(proc)
        log.close()
    return {"live_s": live, "ready_s": health, "answer_s": answer, "web_rss_mb": rss}


def web_rss_mb(pid: int) -> float:
    """Resident memory of that process alone (its engine child is another process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def trial_hello(tmp: Path) -> dict[str, float]:
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    script = tmp / f"hello_{port}.py"
    script.write_text(HELLO.format(port=port))
    log = open(tmp / f"hello-{port}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp, env=child_env(str(tmp)),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        root = poll(start, proc, lambda: httpx.get(url + "/", timeout=2).status_code == 200)

        def call() -> bool:
            client = Client(url + "/", verbose=False)
            try:
                return client.predict("hello", fn_index=0) == "hello"
            finally:
                client.close()

        answer = poll(start, proc, call)
    finally:
        stop(proc)
        log.close()
    return {"ready_s": root, "answer_s": answer}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3, help="interleaved app/hello pairs")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--backend", choices=("local", "tgi"), default="local",
                        help="local: nano-starcoder; tgi: a remote engine (stand-in)")
    parser.add_argument("--engine", choices=("process", "inprocess", "both"), default="process",
                        help="local: the model in its engine process, in the web process, or both side by side")
    args = parser.parse_args()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-start-"))
    engines = ("process", "inprocess") if args.engine == "both" else (args.engine,)
    if args.backend == "tgi":
        engines = ("tgi",)  # no local model: no engine process either
    runs: dict[str, list[dict[str, float]]] = {f"app-{e}": [] for e in engines} | {"hello": []}
    extra_args: list[str] = []
    engine = None
    if args.backend == "tgi":
        port = free_port()
        engine = subprocess.Popen([sys.executable, "-m", "support.standins.tgi_standin", "--port", str(port)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine_url = f"http://127.0.0.1:{port}"
        poll(time.perf_counter(), engine, lambda: httpx.get(engine_url + "/info", timeout=2).status_code == 200)
        extra_args = ["--backend", "tgi", "--endpoint", engine_url, "--model", "starcoder"]
    try:
        for i in range(args.trials):
            run_trial(tmp, extra_args, engines, runs, i)
    finally:
        if engine is not None:
            stop(engine)
    report(args, runs)
    return 0


def run_trial(tmp: Path, extra_args: list[str], engines: tuple[str, ...], runs: dict[str, list[dict[str, float]]],
              i: int) -> None:
    order = engines if i % 2 == 0 else engines[::-1]
    for engine in order:
        args = extra_args if extra_args else ["--engine", engine]
        a = trial_app(tmp, args)
        runs[f"app-{engine}"].append(a)
        print(f"trial {i + 1}: app ({engine}) live {a['live_s']:.2f} s, health {a['ready_s']:.2f} s, first answer "
              f"{a['answer_s']:.2f} s, web RSS {a['web_rss_mb']:.0f} MB", flush=True)
    runs["hello"].append(trial_hello(tmp))
    h = runs["hello"][-1]
    print(f"trial {i + 1}: hello '/' {h['ready_s']:.2f} s, first call {h['answer_s']:.2f} s", flush=True)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]]) -> None:
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    hello = med["hello"]
    ratios = {}
    print(f"\n{'':<16} {'live ÷ hello /':>15} {'health':>8} {'answer ÷ hello call':>20} {'web RSS':>9}")
    for name, m in med.items():
        if name == "hello":
            continue
        ratios[name] = {"live_over_hello_root": m["live_s"] / hello["ready_s"],
                        "answer_over_hello_call": m["answer_s"] / hello["answer_s"]}
        print(f"{name:<16} {m['live_s']:>6.2f}s {ratios[name]['live_over_hello_root']:>6.2f}x {m['ready_s']:>7.2f}s "
              f"{m['answer_s']:>9.2f}s {ratios[name]['answer_over_hello_call']:>8.2f}x {m['web_rss_mb']:>7.0f}MB")
    print(f"{'hello':<16} {hello['ready_s']:>6.2f}s {'':>7} {'':>8} {hello['answer_s']:>9.2f}s")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "cold_start", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "trials": args.trials, "backend": args.backend, "median": med, "ratios": ratios, "runs": runs,
        }, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
