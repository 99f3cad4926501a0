"""Test data for the store tests: plausible Generation records, and plain-SQL looks at a database file."""

from __future__ import annotations

import secrets
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from playground.record import Generation


def make_generation(**overrides: Any) -> Generation:
    """A finished completion-mode generation; keyword arguments replace fields of its JSON form."""
    fields: dict[str, Any] = {
        "id": secrets.token_urlsafe(16),
        "mode": "complete",
        "model": "bigcode/starcoder2-3b",
        "created_at": "2026-11-25T18:40:00.123456+00:00",
        "app_version": "0.1.0",
        "inputs": {"prompt": "def fib(n):"},
        "raw_prompt": "def fib(n):",
        "prompt_version": None,
        "params": {"temperature": 0.2, "top_p": 0.95, "max_new_tokens": 64, "seed": 42},
        "backend": {"kind": "fake", "endpoint": None, "dtype": "float32", "revision": "abc123"},
        "text": "\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        "finish_reason": "eos",
        "usage": {"prompt_tokens": 4, "completion_tokens": 20},
        "timings": {"ttft_ms": 12.5, "total_ms": 80.25, "tokens_per_s": 250.0},
    }
    fields.update(overrides)
    return Generation.from_dict(fields)


def stored_share_count(db: Path) -> int:
    """How many rows the shares table holds, read straight from the file rather than through the store."""
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM shares").fetchone()[0])


def journal_mode(db: Path) -> str:
    """The journal mode recorded in the database file (WAL persists across connections)."""
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
