"""Gradio's own cost on a stream, with no model: the ceiling of the app's Gradio ratio.

A bare Gradio app (its own process, nothing of the playground) streams N pieces from a generator
paced at a given rate, as a model would produce them, and the same gradio_client call as
bench_streaming's Gradio path times it. "Ideal" is N / rate, the time the pieces take to exist;
anything above it is Gradio's queue, its event stream and the client. So ideal / measured is the
most the app's Gradio path can reach against a model running at that rate (the app adds its own
work on top). Two generators are timed, interleaved round by round:
  every   yields the cumulative text after every piece
  paced   yields the first piece at once, then at most every 50 ms (the app's coalescing)

    .venv/bin/python bench/bench_gradio_floor.py [--tokens 128] [--rate 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

from bench.bench_cold_start import poll  # noqa: E402  (waits for a child's first answer)
from support.servers import free_port  # noqa: E402

APP = """
import sys, time
import gradio as gr
from playground.web.streaming import coalesce

def pieces(n, rate):
    start = time.perf_counter()
    for i in range(int(n)):
        time.sleep(max(0.0, start + (i + 1) / float(rate) - time.perf_counter()))
        yield f" t{i}"

def every(n, rate):
    text = ""
    for piece in pieces(n, rate):
        text += piece
        yield text

def paced(n, rate):
    yield from coalesce(pieces(n, rate))

with gr.Blocks() as demo:
    n, rate, out = gr.Number(), gr.Number(), gr.Textbox()
    gr.Button("every").click(every, [n, rate], out, api_name="every")
    gr.Button("paced").click(paced, [n, rate], out, api_name="paced")
demo.queue().launch(server_port=int(sys.argv[1]), quiet=True)
"""


def start_app(port: int) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        poll(time.perf_counter(), proc, lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200)
    except RuntimeError as exc:
        proc.kill()
        raise SystemExit(f"the bare Gradio app did not start: {exc}") from None
    return proc


def time_call(client: Client, api: str, n: int, rate: float) -> tuple[float, float]:
    """(ms to the first output, ms to the last), as app_clients.time_gradio measures them for bench_streaming."""
    start = time.perf_counter()
    first = None
    for _ in client.submit(n, rate, api_name=api):
        first = first or time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - start) * 1000, (end - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rate", type=float, default=200.0, help="pieces per second, the model's speed to mimic")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    proc = start_app(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        apis = ("/every", "/paced")
        for api in apis:  # warm-up, discarded
            time_call(client, api, args.tokens, args.rate)
        runs: dict[str, list[tuple[float, float]]] = {api: [] for api in apis}
        for _ in range(args.rounds):
            for api in apis:
                runs[api].append(time_call(client, api, args.tokens, args.rate))
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ideal = args.tokens / args.rate * 1000
    print(f"{args.tokens} pieces at {args.rate:.0f}/s: ideal {ideal:.0f} ms, {args.rounds} rounds, medians")
    print(f"{'generator':<9} {'first ms':>9} {'total ms':>9} {'ideal ÷ total':>14}")
    for api in apis:
        first = statistics.median(r[0] for r in runs[api])
        total = statistics.median(r[1] for r in runs[api])
        print(f"{api[1:]:<9} {first:>9.1f} {total:>9.1f} {ideal / total:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
