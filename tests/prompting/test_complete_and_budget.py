"""Completion mode, the budget split, and user-text validation."""

from __future__ import annotations

import pytest

from playground.errors import InvalidTextError, PromptTooLongError
from playground.prompt import Prompt, Special, Text
from playground.prompting.budget import MAX_INPUT_CHARS, check_text, plan_budget
from playground.prompting.complete import build_complete


@pytest.mark.parametrize(
    ("context", "max_new", "max_input", "expected"),
    [(512, 128, None, (128, 384)), (512, 2048, None, (511, 384)), (4096, 256, 1000, (256, 1000)), (8192, 256, None, (256, 7936))],
)
def test_plan_budget(context, max_new, max_input, expected):
    budget = plan_budget(context, max_new, max_input)
    assert (budget.max_reply, budget.prompt_tokens) == expected


def test_a_long_prompt_shrinks_the_reply_with_a_notice():
    prepared = build_complete("x" * 300, plan_budget(512, 2048), len)
    assert prepared.reply_tokens == 212
    assert "at most 212 tokens" in prepared.notices[0]


def test_complete_is_the_text_verbatim():
    prepared = build_complete("  x = 1\n\t", plan_budget(100, 10), len)
    assert prepared.prompt == Prompt((Text("  x = 1\n\t"),))


def test_complete_too_long_names_the_numbers():
    with pytest.raises(PromptTooLongError, match="is 200 tokens.*only 90 of the model's 100"):
        build_complete("x" * 200, plan_budget(100, 10), len)


@pytest.mark.parametrize(
    ("value", "error", "needle"),
    [
        ("", InvalidTextError, "empty"),
        ("   \n", InvalidTextError, "empty"),
        ("ok \ud800 bad", InvalidTextError, r"lone surrogate, U\+D800, at character 3"),
        (42, InvalidTextError, "must be text"),
        ("x" * (MAX_INPUT_CHARS + 1), PromptTooLongError, "characters"),
    ],
)
def test_check_text_rejects_bad_input(value, error, needle):
    with pytest.raises(error, match=needle):
        check_text("The prompt", value)


def test_remote_rendering_breaks_typed_special_tokens():
    prompt = Prompt((Special("<fim_prefix>"), Text("a<fim_suffix>b"), Special("<fim_suffix>")))
    rendered = prompt.render_for_remote(frozenset({"<fim_prefix>", "<fim_suffix>"}))
    assert rendered.count("<fim_suffix>") == 1 and rendered.startswith("<fim_prefix>a<\u200bfim_suffix>b")
