"""Test data for the store tests: plausible Generation records, and a store opener."""

from __future__ import annotations

import secrets
from typing import Any

from playground.record import Generation


def make_generation(**overrides: Any) -> Generation:
    """A finished completion-mode generation; keyword arguments replace fields."""
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
    return Generation(**fields)
