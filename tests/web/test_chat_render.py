"""The chat view's Markdown: code shown as written, prose never reinterpreted, and read back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.web.ui.chat_render import MARK, raw, shown

LINES = st.lists(st.sampled_from(["```", "```python", "~~~", "~~~~", "def f():", "    return 1", "", "Use `x` *now*",
                                  "# note", "1. item", "   ```", "\\", "a\\b", "$x$", "<b>hi</b>", "__init__"]),
                 max_size=12).map("\n".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(LINES, st.text(max_size=80)))
def test_what_the_view_shows_reads_back_as_written(text):
    assert raw(shown(text)) == text


def test_unfenced_code_is_fenced_and_prose_is_escaped():
    reply = "Like this:\n\nclass Cache:\n    def __init__(self):\n        pass\n\nfrom __future__ import annotations"
    out = shown(reply)
    assert out.startswith(MARK)
    assert "~~~\nclass Cache:\n    def __init__(self):\n        pass\n~~~\n" in out  # indentation kept, no bold
    assert "~~~\nfrom __future__ import annotations\n~~~" in out
    assert shown("Use __init__ and # not a heading") == MARK + "Use \\_\\_init\\_\\_ and \\# not a heading"


def test_the_models_own_fences_pass_through_for_highlighting():
    reply = "Sorted:\n```python\nprint(sorted(x))\n```\n"
    assert shown(reply) == MARK + "Sorted:\n```python\nprint(sorted(x))\n```\n"


def test_text_the_view_did_not_render_is_taken_as_it_is():
    assert raw("an API client's own **history**") == "an API client's own **history**"


@pytest.mark.parametrize("reply", ['    """\n    Return the sum.\n    """', "```python\nprint(1)\n```", "def f():\n    pass"])
def test_a_reply_that_opens_with_code_opens_with_a_fence_at_the_start_of_a_line(reply):
    """The invisible mark gets a line of its own there: before the fence on the same line, it would keep
    the fence from opening, and the reply would show its fence marks as text."""
    out = shown(reply)
    first_content_line = out.split("\n")[1]
    assert first_content_line.startswith(("~~~", "```")) and raw(out) == reply
