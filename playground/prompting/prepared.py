"""What a mode hands to the stream stage: the prompt plus everything needed to present and record it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from playground.prompt import Prompt

State = TypeVar("State")


@dataclass(frozen=True)
class Spent:
    """What one part of a prompt took of the token budget, and how much of it was kept."""

    part: str  # "prefix", "suffix", "file utils.py", "reply"
    tokens: int
    kept: str  # "all 40 lines", "first 12 of 80 lines", "left out"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prepared(Generic[State]):
    prompt: Prompt
    reply_tokens: int  # max_new_tokens after budgeting
    state: State  # the mode's own, for presenting and showing: fill's hole, chat's context breakdown
    stops: tuple[str, ...] = ()  # mode stop sequences, added to the user's
    notices: tuple[str, ...] = ()  # what was trimmed or dropped to fit, for the user
    inputs: dict[str, Any] = field(default_factory=dict)  # recorded with the generation
    spent: tuple[Spent, ...] = ()  # where the budget went, part by part, where the mode says (fill)
    prompt_version: str | None = None
