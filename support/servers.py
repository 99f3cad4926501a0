"""The real app on a free port, in a thread: what HTTP, browser and benchmark runs talk to."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (another process could still take it before the server does)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, app: Any, port: int):
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)  # as app.py
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, health: str = "/api/health") -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + health, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the app did not become healthy within 60 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(playground: Any) -> LiveServer:
    """The whole app (REST, share pages, Gradio) over ``playground``, started and healthy."""
    from playground.web.server import create_app

    return LiveServer(create_app(playground), free_port()).start()
