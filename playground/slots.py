"""Model slots and recent generations: the state the service keeps between requests.

A slot is one selectable model: its spec, its backend once loaded, and its
turn-taking (a local model serves one generation at a time, a remote engine
as many as ``concurrency``). Recent generations are the only source a share
can be made from.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from playground.backends.base import Backend, BackendInfo
from playground.errors import BusyError, ModelError
from playground.progress import LoadProgress
from playground.record import Generation
from playground.registry import ModelSpec

RECENT_LIMIT = 2000  # finished generations kept in memory, shareable until evicted
RECENT_BYTES = 256 * 2**20  # and at most this much of them, as ``approx_bytes`` estimates it
_OBJECT = 200  # what a token or alternative object costs beyond its text (measured: see tests/test_slots.py)


def approx_bytes(record: Generation) -> int:
    """A record's size in memory, estimated from its texts and token entries (no serialising: this runs
    on every generation). ``tests/test_slots.py`` checks it against what tracemalloc measures."""
    texts = [record.raw_prompt, record.shown.text, *record.shown.fields.values(), *record.notices,
             json.dumps(record.inputs, ensure_ascii=False)]
    tokens = list(record.tokens or [])
    for candidate in record.candidates or []:
        texts += [candidate.shown.text, *candidate.shown.fields.values()]
        tokens += candidate.tokens
    size = sum(len(text) for text in texts if isinstance(text, str))
    for token in tokens:
        size += _OBJECT + len(token.text) + sum(_OBJECT + len(alt.text) for alt in token.top)
    return size + 4096  # the record's own fields


@dataclass
class ModelSlot:
    spec: ModelSpec
    backend: Backend | None = None
    progress: LoadProgress = field(default_factory=LoadProgress)
    concurrency: int = 1  # local models serve one generation at a time
    max_queue: int = 64
    _gate: threading.Semaphore = field(init=False)
    _waiting: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._gate = threading.Semaphore(self.concurrency)

    def require_backend(self) -> Backend:
        if self.backend is not None:
            return self.backend
        if self.progress.error:
            raise ModelError(f"{self.spec.id} failed to load: {self.progress.error}")
        raise ModelError(f"{self.spec.id} is still loading ({self.progress.message}). Try again in a moment.")

    def info(self) -> BackendInfo:
        if self.backend is not None:
            return self.backend.info()
        return BackendInfo(model_id=self.spec.id, backend="local", context_length=self.spec.context_length,
                           loaded=False)

    def acquire(self, cancel: threading.Event) -> None:
        """Wait for a free slot; give up when the queue is full or the caller cancels."""
        with self._lock:
            if self._waiting >= self.max_queue:
                raise BusyError(
                    f"{self.max_queue} requests are already waiting for {self.spec.id}. Try again in a minute."
                )
            self._waiting += 1
        try:
            while not self._gate.acquire(timeout=0.1):
                if cancel.is_set():
                    raise BusyError("Cancelled while waiting for the model.")
        finally:
            with self._lock:
                self._waiting -= 1
        if cancel.is_set():  # stopped while waiting, though the model came free first: it is not run
            self._gate.release()
            raise BusyError("Cancelled while waiting for the model.")

    def release(self) -> None:
        self._gate.release()

    @property
    def waiting(self) -> int:
        return self._waiting


class RecentGenerations:
    """Finished generations by id, bounded by count and by size (oldest out first); the only source a
    share can be made from. Size, because one record can weigh megabytes (eight candidates with five
    alternatives per token, or a long chat) where another weighs a kilobyte."""

    def __init__(self, limit: int = RECENT_LIMIT, max_bytes: int = RECENT_BYTES):
        self.limit, self.max_bytes = limit, max_bytes
        self._items: OrderedDict[str, tuple[Generation, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0  # the records' estimated size (``approx_bytes``)

    def add(self, generation: Generation) -> None:
        size = approx_bytes(generation)
        with self._lock:
            old = self._items.pop(generation.id, None)
            self.bytes += size - (old[1] if old else 0)
            self._items[generation.id] = (generation, size)
            while len(self._items) > 1 and (len(self._items) > self.limit or self.bytes > self.max_bytes):
                self.bytes -= self._items.popitem(last=False)[1][1]

    def get(self, generation_id: object) -> Generation | None:
        if not isinstance(generation_id, str):
            return None
        with self._lock:
            found = self._items.get(generation_id)
        return found[0] if found else None
