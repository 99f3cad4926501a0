"""Pytest fixtures and helpers for tests that talk to the STAND-IN servers.

Import the fixtures you need into a test module (``from support.standins.fixtures
import tgi_standin``); they are kept out of ``tests/conftest.py`` on purpose.

* ``tgi_standin`` / ``openai_standin``: a running in-thread stand-in with the
  default ``StandinConfig``; ``.url``, ``.state`` (script it, read its record);
* ``running_tgi(config)`` / ``running_openai(config)``: the same as context
  managers, for a test that needs other limits, a fixed port or a late start;
* ``subprocess_tgi(...)`` / ``subprocess_openai(...)``: a stand-in in its own
  process, for "the engine was killed";
* ``starcoder_spec()``, ``collect()``, ``wait_for()``, ``thread_count_settles()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from playground.backends.base import Chunk, Event, Finished
from playground.config_types import RemoteTimeouts
from playground.registry import FimTokens, ModelSpec
from support.standins import openai_standin as openai_module
from support.standins import tgi_standin as tgi_module
from support.standins.common import StandinConfig, State, SubprocessServer, ThreadServer

# Short timeouts and back-offs so fault tests finish in seconds; both backends take the same keywords.
FAST_TIMEOUTS = RemoteTimeouts(first_token_s=1.0, idle_s=0.6, connect_s=2.0)
FAST_BACKOFF_S = (0.01, 0.03)


@dataclass
class RunningStandin:
    url: str
    state: State
    server: ThreadServer


@contextmanager
def running_tgi(config: StandinConfig | None = None, port: int = 0) -> Iterator[RunningStandin]:
    state = State(config)
    with ThreadServer(tgi_module.create_app(state), port=port) as server:
        yield RunningStandin(server.url, state, server)


@contextmanager
def running_openai(config: StandinConfig | None = None, port: int = 0) -> Iterator[RunningStandin]:
    state = State(config)
    with ThreadServer(openai_module.create_app(state), port=port) as server:
        yield RunningStandin(server.url, state, server)


@pytest.fixture
def tgi_standin() -> Iterator[RunningStandin]:
    with running_tgi() as standin:
        yield standin


@pytest.fixture
def openai_standin() -> Iterator[RunningStandin]:
    with running_openai() as standin:
        yield standin


def subprocess_tgi(port: int | None = None, args: list[str] | None = None) -> SubprocessServer:
    return SubprocessServer("support.standins.tgi_standin", port=port, args=args, ready_path="/info")


def subprocess_openai(port: int | None = None, args: list[str] | None = None) -> SubprocessServer:
    return SubprocessServer("support.standins.openai_standin", port=port, args=args, ready_path="/v1/models")


def starcoder_spec(**overrides: object) -> ModelSpec:
    """A StarCoder-like registry entry (the stand-ins serve "bigcode/starcoder")."""
    values: dict[str, object] = {
        "id": "starcoder",
        "source": "bigcode/starcoder",
        "context_length": 8192,
        "fim": FimTokens.starcoder(),
        "filename_token": "<filename>",
    }
    values.update(overrides)
    return ModelSpec(**values)  # type: ignore[arg-type]


@dataclass
class Collected:
    text: str
    chunks: list[Chunk]
    finished: Finished


def collect(events: Iterable[Event], on_chunk: Callable[[int], None] | None = None) -> Collected:
    """Drain a backend stream; checks it is chunks, then exactly one Finished."""
    chunks: list[Chunk] = []
    finished: Finished | None = None
    for event in events:
        assert finished is None, f"event after Finished: {event}"
        if isinstance(event, Chunk):
            chunks.append(event)
            if on_chunk:
                on_chunk(len(chunks))
        else:
            finished = event
    assert finished is not None, "stream ended without Finished"
    return Collected("".join(c.text for c in chunks), chunks, finished)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def thread_count_settles(baseline: int, timeout_s: float = 2.0) -> bool:
    """True once no more threads are alive than ``baseline``."""
    return wait_for(lambda: threading.active_count() <= baseline, timeout_s)
