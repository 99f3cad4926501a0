"""Per-client rate limits: a sliding one-minute window per client address.

Defaults are generous (a person or a script working normally never meets
them); a public Space tightens them with env vars. 0 turns a limit off.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from fastapi import Request

from playground.errors import RateLimitedError

_WINDOW_S = 60.0
_MAX_CLIENTS = 100_000  # forget idle clients beyond this, so the table cannot grow without bound


class RateLimiter:
    def __init__(self, per_minute: int, what: str, forwarded_for: str = "ignore",
                 clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.what = what
        self.forwarded_for = forwarded_for  # Settings.forwarded_for: how to tell who sent a request
        self.clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, request: Request) -> None:
        """Count one hit for the request's client; raise RateLimitedError once over the limit."""
        if self.per_minute <= 0:
            return
        client = client_of(request, self.forwarded_for)
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
    trusted proxies wrote it (entries to its left are whatever the client sent). Anything that is not
    an IP address counts as the peer, so made-up strings cannot mint new clients."""
    peer = request.client.host if request.client else "unknown"
    if forwarded_for == "ignore":
        return peer
    # Some proxies add a header line rather than append to the client's: read them all, in order.
    entries = [entry.strip() for line in request.headers.getlist("x-forwarded-for") for entry in line.split(",")]
    if forwarded_for == "first":
        candidate = entries[0] if entries else peer
    else:
        hops = int(forwarded_for)
        candidate = entries[-hops] if len(entries) >= hops else peer
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer
