"""The Generation record: everything about one generation, as shown, shared and re-run.

It is a plain value: ``to_dict`` gives the JSON the REST API returns and the
share store keeps, and ``from_dict`` reverses it exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Mode = str  # "chat" | "fill" | "complete"


@dataclass
class Generation:
    id: str  # 128-bit random, URL-safe; what POST /api/shares takes
    mode: Mode
    model: str
    created_at: str  # ISO 8601, UTC, e.g. "2026-11-25T18:40:00.123456+00:00"
    app_version: str
    inputs: dict[str, Any]  # complete: {prompt}; fill: {code, filename}; chat: {messages, system_prompt}
    raw_prompt: str  # exactly what the model was given, special tokens spelled out
    prompt_version: str | None  # Tech Assistant prompt version/hash for chat, else None
    params: dict[str, Any]  # effective parameters, concrete seed included
    backend: dict[str, Any]  # kind, endpoint, dtype, quantization, revision, placement summary
    text: str = ""  # what the user sees: reply / full code / continuation
    middle: str | None = None  # fill mode: the generated middle alone
    finish_reason: str = "length"  # length | eos | stop | cancelled | error
    error: str | None = None
    notices: list[str] = field(default_factory=list)  # e.g. "dropped 3 example dialogues to fit"
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    timings: dict[str, float | None] = field(
        default_factory=lambda: {"ttft_ms": None, "total_ms": 0.0, "tokens_per_s": None}
    )
    # The generated part checked against code indexes: {"indexes", "checked_chars", "matches"} (plus
    # "unavailable" and why, when no check could be made); None when attribution is turned off.
    attribution: dict[str, Any] | None = None
    # params.logprobs > 0: the generated part's tokens, [{"text", "logprob", "top": [{"text", "logprob"}]}],
    # whose texts join into it exactly (the best candidate's when there are several).
    tokens: list[dict[str, Any]] | None = None
    # params.n > 1: [{"text", "middle"?, "finish_reason", "mean_logprob", "count", "tokens"?}], best first.
    candidates: list[dict[str, Any]] | None = None

    @property
    def incomplete(self) -> bool:
        return self.finish_reason in ("cancelled", "error")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        return cls(**data)
