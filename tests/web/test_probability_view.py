"""The probability view's HTML: control tokens among the alternatives are named, never offered as code."""

from __future__ import annotations

from playground.web.ui.probability_view import branch_point, is_special, tokens_html

TOKENS = [{"text": "return", "logprob": -0.1, "top": [
    {"text": "return", "logprob": -0.1}, {"text": "<fim_suffix>", "logprob": -2.4},
    {"text": "<|endoftext|>", "logprob": -3.0}, {"text": "yield", "logprob": -3.5}]}]


def test_control_tokens_are_shown_as_such_and_cannot_be_clicked():
    page = tokens_html(TOKENS, branchable=True)
    assert 'data-branch="0:3"' in page  # "yield" is offered
    assert 'data-branch="0:1"' not in page and 'data-branch="0:2"' not in page
    assert "&lt;fim_suffix&gt; (control token)" in page and "&lt;|endoftext|&gt; (control token)" in page


def test_a_tampered_click_on_a_control_token_branches_nowhere():
    assert branch_point("0:1", TOKENS) is None and branch_point("0:3", TOKENS) == "yield"


def test_only_a_whole_control_spelling_is_special():
    assert is_special("<fim_middle>") and is_special("<filename>") and is_special("<|endoftext|>")
    assert not is_special(" <fim_middle>") and not is_special("<div>") and not is_special("<")
