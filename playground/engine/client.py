"""The web process's side of the engine: start it, stream from it, and start it again when it dies.

``EngineBackend`` keeps one child process (``worker.main``). A reader thread
takes its messages: loading progress goes to the slot's ``LoadProgress``,
events to the queue of the generation they belong to. When the pipe breaks
(the child was killed, ran out of memory, crashed), every running generation
ends at once with ``finish_reason: "error"`` and the text it already had, and
the engine is started again after a pause that doubles with each crash in a
row (1 s, 2 s, 4 s ... at most 30 s), and resets once it serves.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from playground.backends.base import BackendInfo, Chunk, EngineState, EventStream, Finished
from playground.backends.tokens import prompt_counter
from playground.config import Settings
from playground.engine import protocol as p
from playground.engine import worker
from playground.errors import GenerationFailedError, ModelError, PlaygroundError
from playground.params import GenerationParams
from playground.progress import LoadProgress
from playground.prompt import Prompt
from playground.registry import ModelSpec

log = logging.getLogger("playground.engine")

_POLL_S = 0.05  # how often a waiting stream looks at its cancel flag
_COUNT_TIMEOUT_S = 30.0
_SILENCE_S = 120.0  # a generation the engine says nothing about for this long is given up
_BACKOFF_S = (1.0, 30.0)  # first pause before a restart, and the longest
# The heartbeat: a PING this often while the engine serves; no PONG for HUNG_S and it is taken for hung
# (stopped, or stuck outside Python), killed, and started again as after a crash.
HEARTBEAT_S = 1.0
HUNG_S = 10.0
PAUSED_S = 3.0  # a beat this much later than asked: the web process was not running, not the engine silent
CRASHED = ("The model's engine stopped unexpectedly (the server log has the detail); the output is "
           "incomplete. It is restarting: try again in a few seconds.")
HUNG = (f"The model's engine stopped answering for {HUNG_S:g} s and was restarted; the output is incomplete. "
        "Try again in a few seconds.")


STUCK = "The model stopped responding; the output is incomplete. Try again; if it repeats, restart the app."


def _interrupted(made: int, message: str) -> EventStream:
    """The end of a generation the engine could not finish: an error before any text, else the text kept."""
    if made == 0:
        raise GenerationFailedError(message)
    yield Finished("error", None, made, error=message)


class _Inbox:
    """One request's messages from the engine, and what the stream has done about them."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.cancelled = False  # a CANCEL was sent
        self.finished = False  # the engine said it is done: no CANCEL needed on close


class EngineBackend:
    """A local model served by an engine process, whose ``state`` ``info()`` reports."""

    def __init__(self, settings: Settings, progress: LoadProgress):
        self.settings = settings
        self.progress = progress
        self.state: EngineState = "starting"
        self.spec: ModelSpec | None = None
        self._info: BackendInfo | None = None
        self._lock = threading.Lock()
        self._streams: dict[str, _Inbox] = {}
        self._ids = itertools.count()
        self._conn: Connection | None = None
        self._outgoing: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._process: Any = None
        self._last_pong = time.monotonic()
        # Counts prompts here, with the model's own tokenizer file, as the engine would (no round trip).
        self._counter: Callable[[Prompt], int] | None = None
        self._lost = CRASHED  # what the generations the engine could not finish are told
        self._closing = False
        self._crashes = 0
        self.restarts = 0
        self.ready = threading.Event()  # set whenever the engine serves; cleared while it restarts
        self._start()
        threading.Thread(target=self._heartbeat, name="engine-heartbeat", daemon=True).start()

    # -- the process --
    def _start(self) -> None:
        self.progress.step("starting", "Starting the model's engine process")
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: torch is imported there only
        parent, child = context.Pipe()
        process = context.Process(target=worker.main, args=(child, self.settings), name="playground-engine",
                                  daemon=True)
        process.start()
        child.close()
        outgoing: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        with self._lock:
            self._conn, self._process, self._outgoing, self._lost = parent, process, outgoing, CRASHED
        threading.Thread(target=self._read, args=(parent, process), name="engine-reader", daemon=True).start()
        threading.Thread(target=self._write, args=(parent, outgoing), name="engine-writer", daemon=True).start()

    @staticmethod
    def _write(conn: Connection, outgoing: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
        """The one thread that writes to this engine: a stopped engine's full pipe blocks it, and nothing
        else (no request, no lock, no health check) waits on that write."""
        while (message := outgoing.get()) is not None:
            try:
                conn.send(message)
            except (OSError, EOFError, BrokenPipeError, ValueError):
                return  # the engine died; the reader ends every stream

    def _heartbeat(self) -> None:
        """PING the serving engine; one that stays silent for ``HUNG_S`` is killed, so that the reader's
        crash path ends its generations (with ``HUNG``) and starts it again."""
        last_beat = time.monotonic()
        while not self._closing:
            time.sleep(HEARTBEAT_S)
            now = time.monotonic()
            # A beat far later than asked means this process itself was stopped (SIGSTOP, a suspended
            # machine): the engine's silence over that time says nothing about the engine.
            paused, last_beat = now - last_beat > HEARTBEAT_S + PAUSED_S, now
            if self.state != "ready" or paused:
                self._last_pong = now  # loading, restarting or just resumed: no heartbeat is owed yet
                continue
            if time.monotonic() - self._last_pong > HUNG_S:
                log.error("the engine process answered no heartbeat for %.0f s; killing it to restart it", HUNG_S)
                self._lost = HUNG
                self.progress.step("restarting", f"The model's engine stopped answering for {HUNG_S:g} s; "
                                                 "restarting it.")
                self.kill()
                self._last_pong = time.monotonic()
                continue
            self._send((p.PING,))

    def _read(self, conn: Connection, process: Any) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            self._dispatch(message)
        process.join(5)
        self._ended(process.exitcode)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        tag = message[0]
        if tag == p.PONG:
            self._last_pong = time.monotonic()
        elif tag == p.PROGRESS:
            self.progress.step(message[1], message[2])
        elif tag == p.READY:
            self.spec, self._info = message[1], message[2]
            if self._counter is None:
                self._counter = prompt_counter(self.spec)
            self.state, self._crashes = "ready", 0  # the loader's own "ready" step came as PROGRESS
            self.ready.set()
        elif tag == p.FAILED:
            self.state = "failed"
            self.progress.fail(message[1])
            self.ready.set()  # waiters learn that loading ended
        else:
            target = self._streams.get(message[1])
            if target is not None:
                target.queue.put(message)

    def _ended(self, exitcode: int | None) -> None:
        """The engine is gone: end every running generation, then start it again unless it was meant."""
        restart = not self._closing and self.state != "failed"
        with self._lock:  # under the lock _ask checks the state: no request can slip in after the swap
            if restart:
                self.state = "restarting"
            streams, self._streams = self._streams, {}
        self._outgoing.put(None)  # this engine's writer stops
        for target in streams.values():
            target.queue.put((p.RAISED, None, self._lost))  # read by the stream as the crash (or the hang)
        if not restart:
            return
        self.ready.clear()
        self._crashes += 1
        self.restarts += 1
        pause = min(_BACKOFF_S[0] * 2 ** (self._crashes - 1), _BACKOFF_S[1])
        log.error("the engine process ended (exit code %s); restarting in %.0f s", exitcode, pause)
        self.progress.step("restarting", f"The model's engine stopped (exit code {exitcode}); restarting.")
        threading.Timer(pause, self._restart).start()

    def _restart(self) -> None:
        if not self._closing:
            self._start()

    def kill(self) -> None:
        """Kill the engine outright, as a crash would (for tests and operators)."""
        with self._lock:
            process = self._process
        if process is not None and process.is_alive():
            process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- the Backend interface --
    def info(self) -> BackendInfo:
        if self._info is None:
            spec_id = self.spec.id if self.spec else self.settings.model
            return BackendInfo(model_id=spec_id, backend="local", context_length=0, loaded=False,
                               engine_state=self.state)
        return replace(self._info, loaded=self.state == "ready", engine_state=self.state,
                       engine_restarts=self.restarts)

    def render(self, prompt: Prompt) -> str:
        return prompt.render()  # as LocalBackend: specials become their ids, user text stays text

    def count_tokens(self, prompt: Prompt) -> int:
        if self._counter is not None and self.state == "ready":
            return self._counter(prompt)
        inbox = self._ask(p.COUNT, prompt)
        try:
            answer = inbox.queue.get(timeout=_COUNT_TIMEOUT_S)
        except queue.Empty:
            answer = (p.RAISED, None, None)
        finally:
            with self._lock:
                self._streams.pop(inbox.request_id, None)
        result = answer[2]
        if answer[0] == p.COUNTED and isinstance(result, int):
            return result
        if isinstance(result, PlaygroundError):
            raise result
        raise GenerationFailedError(result if isinstance(result, str) else CRASHED)  # the crash, or the hang

    def stream(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> EventStream:
        inbox = self._ask(p.GENERATE, prompt, params)
        made, heard = 0, time.monotonic()
        try:
            while True:
                if cancel.is_set() and not inbox.cancelled:
                    inbox.cancelled = True
                    self._send((p.CANCEL, inbox.request_id))
                try:
                    message = inbox.queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if time.monotonic() - heard > _SILENCE_S:  # alive but stuck: never hang a request on it
                        yield from _interrupted(made, STUCK)
                        return
                    continue
                heard = time.monotonic()
                if message[0] == p.RAISED:
                    inbox.finished = True
                    if isinstance(message[2], PlaygroundError):
                        raise message[2]
                    yield from _interrupted(made, message[2] or CRASHED)
                    return
                for event in message[2]:
                    made += isinstance(event, Chunk) and bool(event.text)
                    inbox.finished = isinstance(event, Finished)
                    yield event
                if inbox.finished:
                    return
        finally:
            with self._lock:
                self._streams.pop(inbox.request_id, None)
            if not inbox.finished:
                self._send((p.CANCEL, inbox.request_id))  # a consumer that went away stops the model too

    def _ask(self, tag: str, *payload: Any) -> _Inbox:
        inbox = _Inbox(f"r{next(self._ids)}")
        with self._lock:
            if self.state != "ready":
                raise ModelError(self._not_ready())
            self._streams[inbox.request_id] = inbox
        self._send((tag, inbox.request_id, *payload))
        return inbox

    def _not_ready(self) -> str:
        if self.state == "restarting":
            return "The model's engine is restarting after a crash. Try again in a few seconds."
        if self.state == "failed":
            return f"The model failed to load: {self.progress.error}"
        return f"The model is still loading ({self.progress.message}). Try again in a moment."

    def _send(self, message: tuple[Any, ...]) -> None:
        """Queue ``message`` for the engine's writer thread: never blocks, whatever the engine is doing."""
        with self._lock:
            outgoing = self._outgoing
        outgoing.put(message)

    def close(self) -> None:
        self._closing = True
        self._send((p.SHUTDOWN,))
        with self._lock:
            process = self._process
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the engine serves or loading failed; True when it serves."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.state not in ("ready", "failed"):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.ready.wait(left if left is not None else 1.0)
        return self.state == "ready"
