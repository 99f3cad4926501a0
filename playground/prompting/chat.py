"""Chat mode: a Tech Assistant few-shot prompt plus the conversation so far.

Layout: preamble, example dialogues each closed by a ``-----`` line, then the
live turns as ``Human:`` / ``Assistant:``, ending with ``Assistant:`` for the
model to continue. When it does not fit: drop example dialogues oldest first,
then the oldest turns; refuse only a message that cannot fit on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from playground.errors import ConfigError
from playground.prompt import Prompt
from playground.prompting.budget import Budget, TokenCounter, check_text, reply_notice, too_long
from playground.prompting.prepared import Prepared

CHAT_STOPS = ("\nHuman:", "\n-----")
_SEPARATOR = "\n-----\n"


@dataclass(frozen=True)
class TechAssistantPrompt:
    preamble: str
    dialogues: tuple[str, ...]
    version: str  # "tech_assistant/v1", or a content hash for a file we did not write

    @property
    def text(self) -> str:
        return self.preamble + "\n\n" + "".join(d + "\n\n-----\n\n" for d in self.dialogues)


def parse_tech_assistant(text: str, version: str | None = None) -> TechAssistantPrompt:
    """Split a prompt file: the preamble ends where the first line starts with ``Human:``."""
    text = text.replace("\r\n", "\n")
    start = text.find("\nHuman:")
    if not text.startswith("Human:") and start < 0:
        raise ConfigError("The chat prompt has no 'Human:' turn. It needs example dialogues in Human:/Assistant: form.")
    start = 0 if text.startswith("Human:") else start + 1
    dialogues = tuple(d.strip() for d in text[start:].split(_SEPARATOR) if d.strip())
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return TechAssistantPrompt(text[:start].strip(), dialogues, version or digest)


def _turn(user: str, assistant: str) -> str:
    return f"Human: {user}\n\nAssistant: {assistant}\n\n"


def _check_conversation(history: Sequence[tuple[str, str]], message: str) -> None:
    check_text("The message", message)
    for user, assistant in history:
        check_text("A message in the history", user, allow_empty=True)
        check_text("A reply in the history", assistant, allow_empty=True)


def build_chat(
    ta: TechAssistantPrompt,
    history: Sequence[tuple[str, str]],
    message: str,
    budget: Budget,
    count: TokenCounter,
) -> Prepared[dict[str, int]]:
    _check_conversation(history, message)
    preamble = ta.preamble + "\n\n"
    question = f"Human: {message}\n\nAssistant:"
    fixed = count(preamble) + count(question)
    if fixed > budget.prompt_tokens:
        raise too_long(
            "Your message with the assistant's introduction", fixed, budget,
            "Shorten the message, or lower max_new_tokens.",
        )
    examples = [d + "\n\n-----\n\n" for d in ta.dialogues]
    turns = [_turn(u, a) for u, a in history]
    example_counts = [count(e) for e in examples]
    turn_counts = [count(t) for t in turns]
    first_example, first_turn = 0, 0
    total = fixed + sum(example_counts) + sum(turn_counts)
    while total > budget.prompt_tokens and first_example < len(examples):
        total -= example_counts[first_example]
        first_example += 1
    while total > budget.prompt_tokens and first_turn < len(turns):
        total -= turn_counts[first_turn]
        first_turn += 1
    notices = []
    if first_example:
        notices.append(f"Left out {first_example} of {len(examples)} example dialogues to fit the model's context.")
    if first_turn:
        notices.append(f"The {first_turn} oldest turn(s) of this conversation no longer fit and were left out.")
    text = preamble + "".join(examples[first_example:]) + "".join(turns[first_turn:]) + question
    breakdown = {  # tokens per part, for the context meter
        "prompt": count(preamble) + sum(example_counts[first_example:]),
        "history": sum(turn_counts[first_turn:]) + count(question),
        "reply": budget.reply_for(total),
        "free": budget.context_length - total - budget.reply_for(total),
        "context": budget.context_length,
    }
    return Prepared(
        Prompt.of(text),
        budget.reply_for(total),
        breakdown,
        stops=CHAT_STOPS,
        notices=tuple(notices) + reply_notice(budget, total),
        inputs={"messages": [list(pair) for pair in history] + [[message, None]]},
        prompt_version=ta.version,
    )

