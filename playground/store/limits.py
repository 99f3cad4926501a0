"""Rate-limit counters in the shared database, so that a limit holds for all replicas together.

Each (limit, client) has a counter per minute; a request adds one to the current
minute's (one upsert) and reads the previous minute's, and the estimate over the
last sixty seconds is the current count plus the previous one weighted by how
much of it still lies in the window (the sliding-window counter: exact at the
minute's edges, within a few percent between). Clients are stored as keyed
hashes, never as addresses or API keys. When the database cannot be reached the
limits let requests through (logged): a store outage must not stop generating.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from playground.errors import StoreError
from playground.store.database import write_transaction
from playground.store.faults import store_errors

logger = logging.getLogger("playground.store")

WINDOW_S = 60
_HIT = text("INSERT INTO rate_windows (key, window_start, hits) VALUES (:key, :start, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_windows.hits + 1 RETURNING hits")
_PREVIOUS = text("SELECT hits FROM rate_windows WHERE key = :key AND window_start = :start")
_FORGET = text("DELETE FROM rate_windows WHERE window_start < :before")


class SharedCounts:
    """Per-minute hit counters for every replica on one database."""

    def __init__(self, database: Engine, clock: Callable[[], float] = time.time):
        self.database, self.clock = database, clock
        self._forgot = 0

    def hit(self, limit: str, client: str) -> float:
        """Count one hit; the number of hits in the last sixty seconds, this one included (0 when the
        database cannot count now: the request is let through)."""
        now = self.clock()
        start = int(now // WINDOW_S) * WINDOW_S
        key = hashlib.sha256(f"{limit}\0{client}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        try:
            with store_errors("count a request"), write_transaction(self.database) as conn:
                current = int(conn.execute(_HIT, {"key": key, "start": start}).scalar_one())
                previous = conn.execute(_PREVIOUS, {"key": key, "start": start - WINDOW_S}).scalar() or 0
                if start > self._forgot:  # old minutes go, once a minute per process
                    self._forgot = start
                    conn.execute(_FORGET, {"before": start - WINDOW_S})
        except StoreError as error:
            logger.warning("rate limits not counted (requests let through): %s", error.message)
            return 0.0
        return current + previous * (1 - (now - start) / WINDOW_S)
