"""The playground app as a benchmark's client sees it: started as `python app.py`, and timed over REST
(SSE), through gradio_client, and on Gradio's queue protocol read directly, as the browser does.

Shared by ``bench_streaming.py`` (the app's paths beside the model card's snippet),
``bench_editors.py`` and ``bench_remote_concurrency.py``. Each ``time_*`` returns the path's own token count, its wall time from request to
last output, and its client-side time to the first generated text.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from gradio_client.utils import apply_diff

from support.servers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


def time_rest(http: httpx.Client, url, text, n):
    """``http`` is made once outside the clock: building an httpx.Client loads CA certificates (~30 ms)."""
    body = {"mode": "complete", "prompt": text, "stream": True,
            "params": {"max_new_tokens": n, "temperature": 0, "repetition_penalty": 1.0, "seed": 0, "heal": False,
                       "stop_loops": False}}
    first = record = None
    start = time.perf_counter()
    with http.stream("POST", url + "/api/generate", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if "delta" in event and first is None:
                first = time.perf_counter()
            elif event.get("done"):
                record = event
            elif "error" in event:
                raise RuntimeError(event["error"])
    return {"tokens": record["usage"]["completion_tokens"], "seconds": time.perf_counter() - start,
            "client_ttft_ms": (first - start) * 1000, "server_ttft_ms": record["timings"]["ttft_ms"],
            "server_total_ms": record["timings"]["total_ms"], "finish": record["finish_reason"]}


def complete_inputs(text: str, n: int) -> list:
    """The /complete endpoint's inputs in its order: greedy, n tokens, no penalty, healing and loop stops off."""
    return [text, "nano-starcoder", n, 0, 1.0, 0, 1.0, "", "0", False, 1, False, False]


def time_gradio(client, text, n):
    """The API returns (prompt + continuation, stats line); the token count is read from the stats line."""
    start = time.perf_counter()
    first = last = None
    job = client.submit(*complete_inputs(text, n), api_name="/complete")
    for out in job:
        last = out
        if first is None and out[0] != text:
            first = time.perf_counter()  # the first output carrying generated text
    end = time.perf_counter()
    stats = (job.outputs() or [last])[-1][1]
    match = re.match(r"(\d+) tokens .*finish: (\w+)", stats)
    if not match:
        raise RuntimeError(f"unexpected stats line from /complete: {stats!r}")
    return {"tokens": int(match[1]), "seconds": end - start,
            "client_ttft_ms": None if first is None else (first - start) * 1000, "finish": match[2]}


def complete_endpoint(http: httpx.Client, url: str) -> int:
    """The id Gradio's queue knows the /complete endpoint by (gradio_client looks it up the same way)."""
    config = http.get(url + "/config").raise_for_status().json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "complete")


def time_gradio_queue(http: httpx.Client, url: str, endpoint: int, text, n):
    """The /complete call of ``time_gradio`` on Gradio's queue protocol, with no client library between: join
    the queue, read the session's event stream, apply each update's diffs as the browser does."""
    session = uuid.uuid4().hex
    first = values = None
    start = time.perf_counter()
    join = {"data": complete_inputs(text, n), "fn_index": endpoint, "session_hash": session, "event_data": None,
            "trigger_id": None}
    http.post(url + "/gradio_api/queue/join", json=join).raise_for_status()
    with http.stream("GET", url + "/gradio_api/queue/data", params={"session_hash": session}, timeout=600) as response:
        for line in response.iter_lines():
            message = json.loads(line[6:]) if line.startswith("data: ") else {}
            if message.get("msg") == "process_generating":  # the first carries values, later ones diffs
                update = message["output"]["data"]
                values = update if values is None else [apply_diff(v, d) for v, d in zip(values, update, strict=True)]
                if first is None and values[0] != text:
                    first = time.perf_counter()
            elif message.get("msg") == "process_completed":
                values = message["output"]["data"]
                break
    end = time.perf_counter()
    match = re.match(r"(\d+) tokens .*finish: (\w+)", values[1]) if values else None
    if not match:
        raise RuntimeError(f"unexpected end of /complete on the queue: {values!r}")
    return {"tokens": int(match[1]), "seconds": end - start,
            "client_ttft_ms": None if first is None else (first - start) * 1000, "finish": match[2]}


class AppProcess:
    """`python app.py [args]` on a free port; pause() / resume() keep its idle polling off the in-process runs."""

    def __init__(self, threads: int | None, args: Sequence[str] = ()):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, PLAYGROUND_DATA_DIR=tempfile.mkdtemp(prefix="bench-"),
                   PLAYGROUND_GENERATION_TIMEOUT="600", PLAYGROUND_LOG_LEVEL="WARNING")
        if threads is not None:
            env["PLAYGROUND_CPU_THREADS"] = str(threads)
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], env=env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(self.url + "/api/health", 180, self.proc)
        except RuntimeError as exc:
            self.stop()
            raise SystemExit(f"app.py did not become healthy: {exc}") from None

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        self.proc.wait(timeout=30)
