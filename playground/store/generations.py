"""Finished generations in the database, so that every replica can share, read or re-run any of them.

A generation is written when it finishes, before its result is handed to the
client, and kept for the retention period (``--generation-retention``);
expired ones are swept at most once a minute, by whichever process writes.
A share keeps its own copy of the record, so expiry never touches a share.
A write that fails (the database down) is logged and the generation stays in
the finishing process's memory: generating never fails because of the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select

from playground.errors import StoreError
from playground.record import Generation
from playground.store.database import read_transaction
from playground.store.encoding import dump_record, load_record, scrub
from playground.store.faults import store_errors
from playground.store.schema import GenerationRow
from playground.store.shares import RecordReader, ShareStore

logger = logging.getLogger("playground.store")

SWEEP_EVERY_S = 60.0


class GenerationLog:
    """Finished generations by id, in the share store's database, for ``retention`` (None: kept for good)."""

    def __init__(self, store: ShareStore, retention: timedelta | None, clock: Callable[[], datetime] | None = None):
        self.store, self.retention = store, retention
        self.clock = clock or (lambda: datetime.now(UTC))
        self._swept = float("-inf")
        self._sweep_lock = threading.Lock()

    def save(self, generation: Generation) -> bool:
        """Write a finished generation; False (logged) when the database cannot take it now."""
        record = scrub(generation.to_dict())
        values = {"id": record["id"], "created_at": self.clock(), "mode": record["mode"], "model": record["model"],
                  "record_json": dump_record(record)}
        try:
            self.store.ensure_schema()
            with store_errors("save generation"), self.store.writing() as conn:
                conn.execute(insert(GenerationRow), values)
        except StoreError as error:
            logger.warning("a finished generation was kept in memory only: %s", error.message)
            return False
        self._sweep()
        return True

    def get(self, generation_id: str, read: RecordReader = Generation.from_dict) -> Generation | None:
        """The generation with this id, while it is kept; None when unknown or expired. StoreError when
        the database cannot be read."""
        self.store.ensure_schema()
        with store_errors("open generation"), read_transaction(self.store.database) as conn:
            row = conn.execute(select(GenerationRow.created_at, GenerationRow.record_json)
                               .where(GenerationRow.id == generation_id)).first()
        if row is None or (self.retention is not None and row.created_at < self.clock() - self.retention):
            return None
        return read(load_record(row.record_json))

    def expire(self) -> int:
        """Delete the generations older than the retention period; how many went."""
        if self.retention is None:
            return 0
        cutoff = self.clock() - self.retention
        with store_errors("expire generations"), self.store.writing() as conn:
            gone = conn.execute(delete(GenerationRow).where(GenerationRow.created_at < cutoff)).rowcount
        return int(gone or 0)

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept < SWEEP_EVERY_S or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._swept = now
            gone = self.expire()
            if gone:
                logger.info("expired %d generation(s) past the retention period", gone)
        except StoreError as error:
            logger.warning("expiring old generations failed; retried later: %s", error.message)
        finally:
            self._sweep_lock.release()
