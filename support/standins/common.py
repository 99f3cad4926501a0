"""STAND-IN plumbing shared by the TGI and OpenAI-compatible stand-in servers.

The stand-ins are protocol-faithful stand-ins for serving engines that cannot
run here (no GPU, no network). This module holds what both protocols share:

* ``Behaviour``: what the server does with one generation request (a normal
  stream, or a scripted fault), and ``Script``: a queue of behaviours consumed
  one per request, then a default;
* ``script_events``: the protocol-neutral event schedule of one request, at a
  fixed token rate (token ``i`` is due at ``start + i / rate``);
* ``State``: the script plus a record of every request body and stream outcome
  (finished, disconnected, ...), so tests can assert what the client sent and
  that a cancelled stream freed its slot;
* ``ThreadServer`` / ``SubprocessServer``: uvicorn on a free port, in a thread
  or in a process that a test can kill.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

REPO_ROOT = Path(__file__).resolve().parents[2]

# Behaviour kinds:
#   ok          stream tokens, then the final event (length / eos / stop sequence)
#   validation  the engine's validation refuses the request (TGI: 200 stream with one error event)
#   http        answer with HTTP ``status`` and an error body (422, 424, 429, 500, 503 ...)
#   error_event ``after_tokens`` tokens, then an in-stream error event
#   truncate    ``after_tokens`` tokens, then end the body cleanly without a final event
#   drop        ``after_tokens`` tokens, then abort the connection mid-body
#   stall       ``after_tokens`` tokens, then nothing (or only keep-alives) until the client leaves
#   endless     tokens forever, until the client disconnects
#   hang        accept the request but never send response headers
KINDS = ("ok", "validation", "http", "error_event", "truncate", "drop", "stall", "endless", "hang")

DEFAULT_WORDS = ("def", " add", "(", "a", ",", " b", "):", "\n", "    return", " a", " +", " b", "\n")


@dataclass
class Behaviour:
    kind: str = "ok"
    tokens: list[str] | None = None  # text of each token; None: DEFAULT_WORDS repeated
    after_tokens: int = 0  # for mid-stream faults
    status: int = 500  # for kind "http"
    error_type: str = "generation"
    message: str = "Request failed during generation: Server error: CUDA out of memory"
    keepalive: bool = False  # stall: send keep-alive comments while stalled

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown stand-in behaviour {self.kind!r}; one of {KINDS}")


@dataclass
class StandinConfig:
    model_id: str = "bigcode/starcoder"
    max_input_tokens: int = 1024
    max_total_tokens: int = 2048
    max_stop_sequences: int = 4
    max_top_n_tokens: int = 5  # TGI's --max-top-n-tokens default
    chars_per_token: float = 4.0  # how the stand-in "tokenizes" a prompt
    rate: float = 0.0  # tokens per second; 0 = as fast as possible
    keepalive_s: float = 15.0  # TGI's keep-alive period
    eos_text: str = "<|endoftext|>"


@dataclass
class StreamRecord:
    path: str
    started: float
    prompt: str = ""  # what the request asked, so a benchmark can pair client and server timings
    outcome: str = "running"  # finished | disconnected | fault:<kind> | running
    token_times: list[float] = field(default_factory=list)  # monotonic send time of each token
    scheduled: list[float] = field(default_factory=list)  # when each token was due


class State:
    """The script and the record of one stand-in server."""

    def __init__(self, config: StandinConfig | None = None):
        self.config = config or StandinConfig()
        self.default = Behaviour()
        self.queue: deque[Behaviour] = deque()
        self.requests: list[dict[str, Any]] = []
        self.streams: list[StreamRecord] = []
        self.lock = threading.Lock()

    def script(self, *behaviours: Behaviour, default: Behaviour | None = None) -> None:
        with self.lock:
            self.queue = deque(behaviours)
            if default is not None:
                self.default = default

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.queue.popleft() if self.queue else self.default

    def record(self, path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.requests.append({"path": path, "body": body, "headers": headers or {}})

    def active(self) -> int:
        return sum(1 for s in self.streams if s.outcome == "running")

    def prompt_tokens(self, text: str) -> int:
        return max(1, math.ceil(len(text) / self.config.chars_per_token))

    def snapshot(self) -> dict[str, Any]:
        return {"requests": self.requests, "streams": [asdict(s) for s in self.streams]}

    def load_script(self, data: dict[str, Any]) -> None:
        default = Behaviour(**data["default"]) if data.get("default") else None
        self.script(*(Behaviour(**b) for b in data.get("queue", [])), default=default)
        if "rate" in data:
            self.config.rate = float(data["rate"])


# -- the protocol-neutral event schedule --------------------------------------------


@dataclass(frozen=True)
class Tok:
    text: str
    special: bool = False
    final: str | None = None  # "length" | "eos_token" | "stop_sequence" on the last token


@dataclass(frozen=True)
class Err:
    message: str
    error_type: str


class KeepAlive:
    pass


class Drop(Exception):
    """Raised inside a response body: the server aborts the connection."""


def scripted_logprob(index: int) -> float:
    """The log-probability a stand-in reports for its index-th token: made up, varied and repeatable."""
    return round(-0.05 - 0.3 * (index % 5), 4)


async def script_events(
    state: State, behaviour: Behaviour, record: StreamRecord, max_new_tokens: int, stops: list[str],
    offset: int = 0,
) -> AsyncIterator[Tok | Err | KeepAlive]:
    """Yield a request's events at the configured rate; ends cleanly for ``truncate``."""
    config = state.config
    words = behaviour.tokens
    limit = behaviour.after_tokens if behaviour.kind in ("error_event", "truncate", "drop", "stall") else None
    generated = ""
    i = 0
    while True:
        if limit is not None and i >= limit:
            break
        if behaviour.kind != "endless" and i >= max_new_tokens:
            return  # unreachable: the previous token carried the final reason
        await _wait_until(record, config.rate, i)
        if words is not None and i >= len(words) and behaviour.kind == "ok":
            record.token_times.append(time.monotonic())
            yield Tok(config.eos_text, special=True, final="eos_token")
            return
        # A scripted request says exactly what it sends; the default words start where the seed says.
        text = words[i % len(words)] if words else DEFAULT_WORDS[(i + offset) % len(DEFAULT_WORDS)]
        generated += text
        i += 1
        final = None
        if behaviour.kind == "ok":
            if any(stop in generated for stop in stops):
                final = "stop_sequence"
            elif i >= max_new_tokens:
                final = "length"
        record.token_times.append(time.monotonic())
        yield Tok(text, final=final)
        if final:
            return
    if behaviour.kind == "error_event":
        yield Err(behaviour.message, behaviour.error_type)
    elif behaviour.kind == "drop":
        raise Drop()
    elif behaviour.kind == "stall":
        while True:  # until the client disconnects and the task is cancelled
            await asyncio.sleep(config.keepalive_s if behaviour.keepalive else 3600)
            if behaviour.keepalive:
                yield KeepAlive()


async def _wait_until(record: StreamRecord, rate: float, index: int) -> None:
    due = record.started + (index + 1) / rate if rate > 0 else time.monotonic()
    record.scheduled.append(due)
    delay = due - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    elif rate <= 0:
        await asyncio.sleep(0)  # let the loop notice a disconnect


async def tracked(record: StreamRecord, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Wrap a response body so the record says how the stream ended."""
    try:
        async for chunk in body:
            yield chunk
    except Drop:
        record.outcome = "fault:drop"
        raise
    finally:
        if record.outcome == "running":
            # Still running here means the body was cancelled: the client went away.
            record.outcome = "disconnected"


def mark_finished(record: StreamRecord, outcome: str = "finished") -> None:
    record.outcome = outcome


async def hang_forever(record: StreamRecord, request: Any) -> None:
    """Send no response headers until the client goes away (a plain handler is never cancelled)."""
    try:
        while not await request.is_disconnected():
            await asyncio.sleep(0.05)
    finally:
        record.outcome = "disconnected"


# -- serving --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """Serve an ASGI app with uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, app: Any, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="critical", lifespan="off", ws="none", http="h11", loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(5)
        self.sock.close()

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SubprocessServer:
    """Run a stand-in module as its own process, so a test can kill it like a crashed engine."""

    def __init__(self, module: str, port: int | None = None, args: list[str] | None = None, ready_path: str = "/"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", module, "--port", str(self.port), *(args or [])]
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None

    def start(self, timeout_s: float = 30.0) -> SubprocessServer:
        self.log = tempfile.TemporaryFile()  # stderr to a file: a full pipe would block the server
        self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"stand-in exited: {self.log.read().decode(errors='replace')}")
            try:
                httpx.get(self.url + self.ready_path, timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("stand-in process did not start in time")

    def control(self, script: dict[str, Any]) -> None:
        httpx.post(self.url + "/_standin/script", json=script, timeout=5).raise_for_status()

    def snapshot(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_standin/record", timeout=5).json()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> SubprocessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def control_routes(state: State) -> list[Any]:
    """``POST /_standin/script`` and ``GET /_standin/record``: scripting from outside the process."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def set_script(request: Request) -> JSONResponse:
        state.load_script(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    async def get_record(request: Request) -> JSONResponse:
        return JSONResponse(state.snapshot())

    return [Route("/_standin/script", set_script, methods=["POST"]), Route("/_standin/record", get_record)]


def add_cli_arguments(parser: Any) -> None:
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other containers")
    parser.add_argument("--rate", type=float, default=0.0, help="tokens per second (0: as fast as possible)")
    parser.add_argument("--max-input-tokens", type=int, default=1024)
    parser.add_argument("--max-total-tokens", type=int, default=2048)
    parser.add_argument("--keepalive-s", type=float, default=15.0)
    parser.add_argument("--model-id", default="bigcode/starcoder")
    parser.add_argument("--script", default=None, help='JSON: {"default": {...}, "queue": [{...}]}')


def config_from_cli(args: Any) -> StandinConfig:
    return StandinConfig(
        model_id=args.model_id,
        max_input_tokens=args.max_input_tokens,
        max_total_tokens=args.max_total_tokens,
        rate=args.rate,
        keepalive_s=args.keepalive_s,
    )


def serve_forever(app: Any, port: int, host: str = "127.0.0.1") -> None:
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", ws="none", http="h11")
