"""Model slots and recent generations: the state the service keeps between requests.

A slot is one selectable model: its spec, its backend once loaded, and its
turn-taking (a local model serves one generation at a time, a remote engine
as many as ``concurrency``). Recent generations are the only source a share
can be made from.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from playground.backends.base import Backend, BackendInfo
from playground.errors import BusyError, ModelError
from playground.progress import LoadProgress
from playground.record import Generation
from playground.registry import ModelSpec

RECENT_LIMIT = 2000  # finished generations kept in memory, shareable until evicted


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
    """Finished generations by id, bounded; the only source a share can be made from."""

    def __init__(self, limit: int = RECENT_LIMIT):
        self.limit = limit
        self._items: OrderedDict[str, Generation] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, generation: Generation) -> None:
        with self._lock:
            self._items[generation.id] = generation
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, generation_id: object) -> Generation | None:
        if not isinstance(generation_id, str):
            return None
        with self._lock:
            return self._items.get(generation_id)
