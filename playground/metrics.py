"""Prometheus metrics and the one-line-per-generation log.

Each app builds its own CollectorRegistry, so two apps in one process (tests)
never share counters and nothing is registered at import.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from playground.record import Generation

log = logging.getLogger("playground.generations")


class Metrics:
    def __init__(self, queue_depth: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter("playground_http_requests", "HTTP requests by route group and status",
                                ["route", "status"], registry=self.registry)
        self.generations = Counter("playground_generations", "Finished generations",
                                   ["mode", "model", "finish_reason"], registry=self.registry)
        self.tokens = Counter("playground_tokens", "Tokens processed", ["model", "kind"], registry=self.registry)
        self.errors = Counter("playground_errors", "Errors shown to users, by type", ["type"], registry=self.registry)
        self.ttft = Histogram("playground_time_to_first_token_seconds", "Time to first token", ["model"],
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=self.registry)
        self.queue = Gauge("playground_queue_depth", "Requests waiting for a model", registry=self.registry)
        self.queue.set_function(queue_depth)

    def observe(self, record: Generation) -> None:
        self.generations.labels(record.mode, record.model, record.finish_reason).inc()
        self.tokens.labels(record.model, "prompt").inc(record.usage.prompt_tokens)
        self.tokens.labels(record.model, "completion").inc(record.usage.completion_tokens)
        ttft_ms = record.timings.ttft_ms
        if ttft_ms is not None:
            self.ttft.labels(record.model).observe(ttft_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class IdHasher:
    """Keyed hashes of generation ids for the logs (share ids are never logged at all).

    An id is a capability (whoever holds it can read the generation back or share
    it), so logs carry an HMAC of it instead: the operator can still follow one
    generation through the logs, and can check a given id against them, but no
    log line opens anything. The key is ``--log-key``; without one it is random per
    process, so hashes then match only within one run.
    """

    def __init__(self, key: str | None):
        self._key = (key or secrets.token_hex(32)).encode()

    def __call__(self, identifier: str) -> str:
        return "h:" + hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()[:20]


def log_generation(record: Generation, *, include_prompt: bool, hasher: IdHasher) -> None:
    """One JSON line per generation; prompt text only when the operator opted in; never the id itself."""
    entry = {
        "event": "generation",
        "id": hasher(record.id),
        "mode": record.mode,
        "model": record.model,
        "backend": record.backend.kind,
        "finish_reason": record.finish_reason,
        **asdict(record.usage),
        **asdict(record.timings),
    }
    if include_prompt:
        entry["raw_prompt"] = record.raw_prompt
    log.info(json.dumps(entry, ensure_ascii=False))
