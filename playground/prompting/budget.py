"""Token budgeting shared by the modes: how much room the prompt and the reply get."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playground.errors import InvalidTextError, PromptTooLongError

TokenCounter = Callable[[str], int]

@dataclass(frozen=True)
class Budget:
    """The context split: the prompt may fill ``prompt_tokens``; the reply gets the rest, up to ``max_reply``.

    A reply of at least ``reserved`` tokens is kept free, so a long prompt
    cannot leave the model no room to answer; beyond that the prompt wins and
    the reply shrinks (with a notice), instead of refusing a prompt that fits.
    """

    context_length: int
    max_reply: int  # the user's max_new_tokens, capped by the context
    prompt_tokens: int  # the most the prompt may use

    @property
    def reserved(self) -> int:
        return self.context_length - self.prompt_tokens

    def reply_for(self, prompt_tokens: int) -> int:
        return max(0, min(self.max_reply, self.context_length - prompt_tokens))


def plan_budget(context_length: int, max_new_tokens: int, max_input_tokens: int | None = None) -> Budget:
    max_reply = min(max_new_tokens, context_length - 1)
    reserved = min(max_reply, max(1, context_length // 4))
    prompt = context_length - reserved
    if max_input_tokens is not None:
        prompt = min(prompt, max_input_tokens)
    return Budget(context_length, max_reply, prompt)


def reply_notice(budget: Budget, prompt_tokens: int) -> tuple[str, ...]:
    reply = budget.reply_for(prompt_tokens)
    if reply >= budget.max_reply:
        return ()
    return (f"The reply can use at most {reply} tokens: the prompt ({prompt_tokens}) takes the rest of the "
            f"model's {budget.context_length}-token context.",)


def too_long(what: str, tokens: int, budget: Budget, hint: str) -> PromptTooLongError:
    return PromptTooLongError(
        f"{what} is {tokens} tokens, but with {budget.reserved} tokens kept for the reply only "
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
