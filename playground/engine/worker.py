"""The engine process: load the model, then serve generations from the web process over the pipe.

Runs in a child started with the ``spawn`` method, so torch and the model
live only here. The main thread runs the generations, one at a time: torch's
``generate`` ran 1.2-1.4x faster there than on a thread started later (quiet
runs on 2 cores; README, Performance). At shutdown, queued generations are
answered as cancelled without running. A reader thread takes
requests off the pipe (cancels reach a running generation from there, within
a token), and a writer thread sends messages, everything queued since its
last write as one.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from playground.backends.base import Finished
from playground.config import Settings
from playground.engine import protocol as p
from playground.errors import PlaygroundError
from playground.progress import LoadProgress

log = logging.getLogger("playground.engine")

_UNEXPECTED = "The model failed unexpectedly while starting (the server log has the detail)."


class _Outbox:
    """Messages to the web process, written by one thread; a generation's queued events go as one."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._write, name="engine-outbox", daemon=True)
        self.thread.start()

    def put(self, message: tuple[Any, ...]) -> None:
        self.queue.put(message)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(5)

    def _write(self) -> None:
        while (message := self.queue.get()) is not None:
            batch = [message]
            while not self.queue.empty():  # a burst: merge consecutive events of one request
                nxt = self.queue.get()
                if nxt is None:
                    self._send(batch)
                    return
                batch.append(nxt)
            self._send(batch)

    def _send(self, batch: list[tuple[Any, ...]]) -> None:
        merged: list[tuple[Any, ...]] = []
        for message in batch:
            last = merged[-1] if merged else None
            if last is not None and last[0] == message[0] == p.EVENTS and last[1] == message[1]:
                merged[-1] = (p.EVENTS, last[1], [*last[2], *message[2]])
            else:
                merged.append(message)
        try:
            for message in merged:
                self.conn.send(message)
        except (OSError, EOFError, BrokenPipeError):
            pass  # the web process is gone; the main loop ends on its own read


class _ForwardedProgress(LoadProgress):
    """Loading progress that also reaches the web process, so its UI and health read the same steps."""

    def __init__(self, outbox: _Outbox):
        super().__init__()
        self.outbox = outbox

    def step(self, phase: str, message: str) -> None:
        super().step(phase, message)
        self.outbox.put((p.PROGRESS, phase, message))


def main(conn: Connection, settings: Settings) -> None:
    """The child's entry point (a module-level function, as ``spawn`` needs)."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s engine %(levelname)s %(name)s: %(message)s")
    outbox = _Outbox(conn)
    backend = _load(settings, outbox)
    if backend is not None:
        _serve(conn, backend, outbox)
    outbox.close()


def _load(settings: Settings, outbox: _Outbox) -> Any:
    try:
        from playground.backends.local import LocalBackend
        from playground.backends.local_compile import COMPILING
        from playground.loading import load_model
        from playground.registry import load_registry

        progress = _ForwardedProgress(outbox)
        loaded = load_model(settings.model, load_registry(), settings, progress)
        if settings.compile_steps:
            progress.step("compiling", COMPILING)
        backend = LocalBackend(loaded, compile_steps=settings.compile_steps)
    except PlaygroundError as exc:
        outbox.put((p.FAILED, exc.message))
        return None
    except Exception:  # noqa: BLE001 - reported as a load failure; the detail goes to this process's log
        log.exception("loading failed")
        outbox.put((p.FAILED, _UNEXPECTED))
        return None
    outbox.put((p.READY, loaded.spec, backend.info()))
    return backend


def _serve(conn: Connection, backend: Any, outbox: _Outbox) -> None:
    """Run generations on this (the main) thread as the reader thread queues them, until it stops."""
    cancels: dict[str, threading.Event] = {}
    jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
    reader = threading.Thread(target=_read, args=(conn, backend, outbox, cancels, jobs), name="engine-inbox",
                              daemon=True)
    reader.start()
    while (job := jobs.get()) is not None:
        job()


def _read(conn: Connection, backend: Any, outbox: _Outbox, cancels: dict[str, threading.Event],
          jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
    """Requests from the web process, until it says stop or goes away; then every generation stops."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break  # the web process went away: nobody to serve
        tag = message[0]
        if tag == p.SHUTDOWN:
            break
        if tag == p.CANCEL:
            cancel = cancels.get(message[1])
            if cancel is not None:
                cancel.set()
        elif tag == p.PING:  # answered here, not by the main thread: a long generation is not a hang
            outbox.put((p.PONG,))
        elif tag == p.COUNT:
            outbox.put((p.COUNTED, message[1], _count(backend, message[2])))
        elif tag == p.GENERATE:
            request_id, prompt, params = message[1:]
            cancel = cancels.setdefault(request_id, threading.Event())
            jobs.put(functools.partial(_generate, backend, outbox, cancels, request_id, prompt, params, cancel))
    for cancel in list(cancels.values()):
        cancel.set()
    jobs.put(None)


def _count(backend: Any, prompt: Any) -> int | PlaygroundError:
    try:
        return int(backend.count_tokens(prompt))
    except PlaygroundError as exc:
        return exc


def _generate(backend: Any, outbox: _Outbox, cancels: dict[str, threading.Event], request_id: str, prompt: Any,
              params: Any, cancel: threading.Event) -> None:
    def emit(event: Any) -> None:
        outbox.put((p.EVENTS, request_id, [event]))

    if cancel.is_set():  # stopped (or shut down) while it waited: no prefill for nothing
        emit(Finished("cancelled", None, 0))
        cancels.pop(request_id, None)
        return
    try:
        backend.generate_into(prompt, params, cancel, emit)
    except PlaygroundError as exc:
        outbox.put((p.RAISED, request_id, exc))
    except Exception:  # noqa: BLE001 - the web side gets a message; the detail stays in this log
        log.exception("generation failed")
        outbox.put((p.RAISED, request_id, PlaygroundError("The model failed while generating. Try again.")))
    finally:
        cancels.pop(request_id, None)
