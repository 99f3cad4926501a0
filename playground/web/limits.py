"""Per-client rate limits: a sliding one-minute window per client address.

Defaults are generous (a person or a script working normally never meets
them); a public Space tightens them with env vars. 0 turns a limit off.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from fastapi import Request

from playground.errors import RateLimitedError

_WINDOW_S = 60.0
_MAX_CLIENTS = 100_000  # forget idle clients beyond this, so the table cannot grow without bound


class RateLimiter:
    def __init__(self, per_minute: int, what: str, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.what = what
        self.clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Count one hit for ``client``; raise RateLimitedError once over the limit."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            hits = self._hits[client]
            while hits and now - hits[0] > _WINDOW_S:
                hits.popleft()
            if len(hits) >= self.per_minute:
                wait = max(1, int(_WINDOW_S - (now - hits[0])) + 1)
                raise RateLimitedError(
                    f"Too many {self.what} from your address ({self.per_minute} a minute). Try again in {wait} s."
                )
            hits.append(now)
            if len(self._hits) > _MAX_CLIENTS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, h in self._hits.items() if not h or now - h[-1] > _WINDOW_S]:
            del self._hits[client]


def client_of(request: Request, forwarded_for: str) -> str:
    """The client's address, by ``Settings.forwarded_for``: the connection's peer when the header is
    ignored; else X-Forwarded-For's first entry, or the N-th from the right, where the first of N
    trusted proxies wrote it (entries to its left are whatever the client sent)."""
    peer = request.client.host if request.client else "unknown"
    entries = [entry.strip() for entry in request.headers.get("x-forwarded-for", "").split(",") if entry.strip()]
    if forwarded_for == "ignore" or not entries:
        return peer
    if forwarded_for == "first":
        return entries[0]
    hops = int(forwarded_for)
    return entries[-hops] if len(entries) >= hops else peer
