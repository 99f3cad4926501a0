"""What a mode hands to the stream stage: the prompt plus everything needed to present and record it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.prompt import Prompt


@dataclass(frozen=True)
class Prepared:
    prompt: Prompt
    reply_tokens: int  # max_new_tokens after budgeting
    stops: tuple[str, ...] = ()  # mode stop sequences, added to the user's
    notices: tuple[str, ...] = ()  # what was trimmed or dropped to fit, for the user
    inputs: dict[str, Any] = field(default_factory=dict)  # recorded with the generation
    prompt_version: str | None = None
    breakdown: dict[str, int] = field(default_factory=dict)  # chat: tokens per part, for the context meter
    hole: tuple[str, str] | None = None  # fill: the user's code before and after the hole, split once
