"""Loading progress of one model: what the console logs, the UI polls and ``/api/health`` reports.

It lives apart from ``loading`` so that the web side can show progress
without importing torch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("playground.loading")


@dataclass
class LoadProgress:
    """Loading state. Thread-safe enough: one writer (the loader), many readers."""

    phase: str = "waiting"  # waiting | config | planning | tokenizer | weights | ready | failed
    message: str = "Not started."
    started_at: float = field(default_factory=time.monotonic)
    error: str | None = None

    def step(self, phase: str, message: str) -> None:
        self.phase, self.message = phase, message
        log.info("[%5.1fs] %s", time.monotonic() - self.started_at, message)

    def fail(self, message: str) -> None:
        self.phase, self.error = "failed", message

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "message": self.message,
            "elapsed_s": round(time.monotonic() - self.started_at, 1),
            "error": self.error,
        }
