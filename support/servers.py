"""The real app on a free port, in a thread: what HTTP, browser and benchmark runs talk to."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (another process could still take it before the server does)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, timeout_s: float, process: subprocess.Popen[Any] | None = None) -> None:
    """Return once ``url`` answers 200; raise RuntimeError when ``process`` (the server, if it is a child)
    exits first or ``timeout_s`` passes, naming the last error seen."""
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return
            last = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s (last: {last})")


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON events of a server-sent event stream, as the app's REST routes write them."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


class LiveServer:
    def __init__(self, app: Any, port: int):
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)  # as app.py
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, health: str = "/api/health") -> LiveServer:
        self.thread.start()
        wait_healthy(self.url + health, 60)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(playground: Any) -> LiveServer:
    """The whole app (REST, share pages, Gradio) over ``playground``, started and healthy."""
    from playground.web.server import create_app

    return LiveServer(create_app(playground), free_port()).start()
