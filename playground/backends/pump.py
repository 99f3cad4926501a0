"""One remote request in a worker thread: its events handed over a queue, its socket shut on cancel.

A blocked socket read cannot check a flag, so the request runs in a daemon
thread and the caller polls a queue; a cancel, a timeout or an abandoned
stream shuts the socket, which wakes the worker and tells the engine to drop
the request from its batch.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from playground.backends.base import Event

logger = logging.getLogger(__name__)

_JOIN_S = 1.0  # how long closing a stream waits for its worker thread

# Opens one request and yields its events. It runs in a worker thread and
# calls ``register(sock)`` once the response is open so a cancel can shut it.
# A Finished from a source may leave its counts None: the driver fills in its own.
EventSource = Callable[[Callable[[socket.socket | None], None]], Iterator[Event]]


def shutdown_socket(sock: socket.socket | None) -> None:
    """Wake a thread blocked reading ``sock`` and send the server a FIN.

    ``close()`` from another thread does neither on Linux: the blocked read
    keeps the socket alive, so the engine would keep generating.
    """
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def socket_of(response: Any) -> socket.socket | None:
    """The TCP socket under an httpx(2) response, or None where it cannot be found."""
    try:
        stream = response.extensions["network_stream"]
        sock = stream.get_extra_info("socket")
    except (AttributeError, KeyError, TypeError):
        return None
    return sock if isinstance(sock, socket.socket) else None


class Pump:
    """Runs one request's event generator in a daemon thread, feeding a queue."""

    def __init__(self, source: EventSource, name: str):
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _register(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            stopped = self._stop.is_set()
        if stopped:  # closed while the request was still opening
            shutdown_socket(sock)

    def _run(self, source: EventSource) -> None:
        events = source(self._register)
        try:
            for event in events:
                if self._stop.is_set():
                    return
                self._queue.put(("event", event))
            self._queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which maps it
            if not self._stop.is_set():
                self._queue.put(("error", exc))
        finally:
            try:
                events.close()  # type: ignore[attr-defined]  # runs the source's own clean-up
            except Exception:  # noqa: BLE001 - clean-up of a dead stream must not raise
                logger.debug("closing a remote stream failed", exc_info=True)

    def get(self, timeout_s: float) -> tuple[str, Any] | None:
        try:
            return self._queue.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        if not self._thread.is_alive():
            return
        with self._lock:
            sock = self._sock
        if sock is None:
            # Still waiting for response headers, with no socket to shut: the worker
            # ends by itself once they come or at the client's read timeout.
            logger.debug("remote stream worker %s is still opening its request", self._thread.name)
            return
        shutdown_socket(sock)
        self._thread.join(_JOIN_S)
