"""Completion mode: the user's text is the prompt, continued as-is."""

from __future__ import annotations

from playground.prompt import Prompt
from playground.prompting.budget import Budget, TokenCounter, check_text, reply_notice, too_long
from playground.prompting.prepared import Prepared


def build_complete(text: str, budget: Budget, count: TokenCounter) -> Prepared[None]:
    check_text("The prompt", text)
    tokens = count(text)
    if tokens > budget.prompt_tokens:
        raise too_long("The prompt", tokens, budget, "Shorten it, or lower max_new_tokens.")
    return Prepared(Prompt.of(text), budget.reply_for(tokens), None, notices=reply_notice(budget, tokens),
                    inputs={"prompt": text})
