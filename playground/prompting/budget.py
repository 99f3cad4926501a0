"""Token budgeting shared by the modes: how much room the prompt and the reply get."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playground.errors import InvalidTextError, PromptTooLongError

TokenCounter = Callable[[str], int]

@dataclass(frozen=True)
class Budget:
    """The context split between the prompt and the reply."""

    context_length: int
    reply_tokens: int
    prompt_tokens: int  # at most context_length - reply_tokens; less where an engine caps its input


def plan_budget(context_length: int, max_new_tokens: int, max_input_tokens: int | None = None) -> Budget:
    reply = min(max_new_tokens, context_length - 1)
    prompt = context_length - reply
    if max_input_tokens is not None:
        prompt = min(prompt, max_input_tokens)
    return Budget(context_length, reply, prompt)


def too_long(what: str, tokens: int, budget: Budget, hint: str) -> PromptTooLongError:
    return PromptTooLongError(
        f"{what} is {tokens} tokens, but with {budget.reply_tokens} tokens kept for the reply only "
        f"{budget.prompt_tokens} of the model's {budget.context_length} fit. {hint}"
    )


MAX_INPUT_CHARS = 200_000  # far beyond any context; stops a pasted log from reaching the tokenizer


def check_text(name: str, value: object, *, allow_empty: bool = False) -> str:
    """Validate one user text field: a string, valid Unicode, not absurdly long."""
    if not isinstance(value, str):
        raise InvalidTextError(f"{name} must be text.")
    if not allow_empty and not value.strip():
        raise InvalidTextError(f"{name} is empty. Type something for the model to work on.")
    if len(value) > MAX_INPUT_CHARS:
        raise PromptTooLongError(
            f"{name} is {len(value):,} characters; the limit is {MAX_INPUT_CHARS:,}, far more than any model "
            "here can read. Send only the part that matters."
        )
    for index, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            raise InvalidTextError(
                f"{name} contains broken Unicode (a lone surrogate, U+{ord(char):04X}, at character {index}). "
                "Re-copy the text from its source or remove that character."
            )
    return value
