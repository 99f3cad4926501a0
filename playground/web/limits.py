"""Per-client rate limits: a sliding one-minute window per client address.

Defaults are generous (a person or a script working normally never meets
them); a public Space tightens them with env vars. 0 turns a limit off.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from playground.config_types import ForwardedFor, RateLimits
from playground.errors import RateLimitedError
from playground.store.limits import SharedCounts

_WINDOW_S = 60.0
_MAX_CLIENTS = 100_000  # past this, idle clients are forgotten (at most one sweep a window, so the cost stays flat)


class RateLimiter:
    """Hits per client over a sliding minute: in this process, or for every replica together when given the
    database's ``shared`` counters (a call then makes a database round trip: keep it off the event loop)."""

    def __init__(self, per_minute: int, what: str, forwarded_for: ForwardedFor = ForwardedFor(),
                 clock: Callable[[], float] = time.monotonic, shared: SharedCounts | None = None):
        self.per_minute = per_minute
        self.what = what
        self.forwarded_for = forwarded_for  # how to tell who sent a request
        self.clock = clock
        self.shared = shared
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._swept = float("-inf")
        self._lock = threading.Lock()

    def check(self, request: Request) -> None:
        """Count one hit for the request's client; raise RateLimitedError once over the limit."""
        if self.per_minute > 0:
            self.hit(client_of(request, self.forwarded_for))

    def hit(self, client: str) -> None:
        """Count one hit for ``client`` (an address, or an API key's digest); raise once over the limit."""
        if self.per_minute <= 0:
            return
        if self.shared is not None:
            if self.shared.hit(self.what, client) > self.per_minute:
                raise RateLimitedError(f"Too many {self.what} ({self.per_minute} a minute). Try again in a "
                                       "few seconds.")
            return
        now = self.clock()
        with self._lock:
            hits = self._hits[client]
            while hits and now - hits[0] > _WINDOW_S:
                hits.popleft()
            if len(hits) >= self.per_minute:
                wait = max(1, int(_WINDOW_S - (now - hits[0])) + 1)
                raise RateLimitedError(
                    f"Too many {self.what} ({self.per_minute} a minute). Try again in {wait} s."
                )
            hits.append(now)
            if len(self._hits) > _MAX_CLIENTS and now - self._swept > _WINDOW_S:
                self._swept = now
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, h in self._hits.items() if not h or now - h[-1] > _WINDOW_S]:
            del self._hits[client]


async def count(limiter: RateLimiter, request: Request) -> None:
    """``limiter.check`` from a coroutine: at once when it counts in memory; on a worker thread when it asks
    the database, which must never hold up the event loop."""
    if limiter.shared is None:
        limiter.check(request)
    else:
        await run_in_threadpool(limiter.check, request)


def client_of(request: Request, forwarded_for: ForwardedFor) -> str:
    """The client's address under the ``--forwarded-for`` policy. Some proxies add a header line
    rather than append to the client's, so every X-Forwarded-For line is read, in order."""
    peer = request.client.host if request.client else "unknown"
    entries = [entry for line in request.headers.getlist("x-forwarded-for") for entry in line.split(",")]
    return forwarded_for.client(peer, entries)


@dataclass(frozen=True)
class WebLimits:
    """The per-client limits, made once per app so that the UI, REST and the Gradio API share them."""

    generations: RateLimiter
    share_creations: RateLimiter
    share_lookups: RateLimiter

    @classmethod
    def from_settings(cls, limits: RateLimits, forwarded_for: ForwardedFor,
                      shared: SharedCounts | None = None) -> WebLimits:
        def limiter(per_minute: int, what: str) -> RateLimiter:
            return RateLimiter(per_minute, what, forwarded_for, shared=shared)

        return cls(limiter(limits.generate_per_minute, "generations from your address"),
                   limiter(limits.share_create_per_minute, "shares created from your address"),
                   limiter(limits.share_lookup_per_minute, "share lookups from your address"))
