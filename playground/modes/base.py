"""What every mode offers: build a prompt from user input, present raw output, restore a share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from playground.prompting.budget import Budget, TokenCounter
from playground.prompting.chat import TechAssistantPrompt
from playground.prompting.prepared import Prepared
from playground.record import Generation
from playground.registry import ModelSpec


@dataclass(frozen=True)
class ModeContext:
    """What a mode may read while building: the model's facts, the server's chat prompt and the budget."""

    spec: ModelSpec
    chat_prompt: TechAssistantPrompt
    budget: Budget
    count: TokenCounter


@dataclass(frozen=True)
class Presented:
    """Generated text as the user sees it."""

    text: str  # chat: the reply; fill: the whole code; complete: the continuation
    middle: str | None = None  # fill: the generated middle alone


@dataclass(frozen=True)
class Restored:
    """A shared generation, as its tab shows it again."""

    inputs: dict[str, str]  # the editable fields by input name (message, code, filename, prompt, ...)
    shown: str  # the main output as the tab displays it
    middle: str | None = None
    turns: tuple[tuple[str, str], ...] = ()  # chat: (user, assistant) pairs, ending with the reply
    user_stops: tuple[str, ...] = ()  # the stop sequences the user chose, without the mode's own


class Mode(Protocol):
    name: str
    stops: tuple[str, ...]  # stop sequences the mode always adds
    candidates: bool  # whether it offers several candidates (params.n > 1)

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared:
        """Validate the inputs and build a prompt that fits ``ctx.budget``; raises InputError subclasses."""
        ...

    def present(self, prepared: Prepared, raw: str) -> Presented:
        """The raw generated text so far, as the user sees it."""
        ...

    def offset(self, raw: str) -> int:
        """Where the generated part (what ``deltas`` join into) begins in the raw text: it is always
        ``raw[offset:offset + len(part)]``, so the tokens behind it can be found."""
        ...

    def deltas(self, prepared: Prepared, raw: Iterator[str]) -> Iterator[str]:
        """The streamed deltas a client receives: joined, they equal the generated part of the record
        (chat: the reply; fill: the middle; complete: the continuation)."""
        ...

    def restore(self, record: Generation) -> Restored:
        """What the tab shows when ``record`` is opened from a share link."""
        ...


def user_stops(record: Generation, mode_stops: tuple[str, ...]) -> tuple[str, ...]:
    """The stops a user chose: the recorded ones minus those the mode adds by itself."""
    return tuple(s for s in record.params.get("stop", []) if s not in mode_stops)
