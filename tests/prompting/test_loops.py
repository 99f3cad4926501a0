"""Loops: the same text back to back, found where it begins to count, and never in rows of symbols."""

from __future__ import annotations

import glob
import os

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground.modes.fill import FillMode
from playground.prompt import Prompt
from playground.prompting.fill_end import Hole, settled_middle
from playground.prompting.loops import MAX_UNIT, MIN_CHARS, MIN_COPIES, Loops
from playground.prompting.prepared import Prepared

from ..web.test_api import sse_events


def slow_end(text: str) -> int | None:
    """The rule as written, checked the long way: the first end of a run of copies of one unit."""
    for end in range(1, len(text) + 1):
        for unit in range(1, MAX_UNIT + 1):
            size = max(MIN_COPIES, -(-MIN_CHARS // unit)) * unit
            run = text[end - size : end] if end >= size else ""
            if run and run == run[:unit] * (size // unit) and any(c.isalpha() for c in run[:unit]):
                return end
    return None


TEXT = st.text(alphabet="ab \n0", max_size=160)


@given(TEXT)
def test_the_first_loop_is_where_the_rule_first_holds(text):
    assert Loops().end(text) == slow_end(text)


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 160)), max_size=20), st.lists(TEXT, min_size=3, max_size=3))
def test_texts_asked_about_in_any_order_get_the_same_answers(asks, texts):
    """Candidates share one hole: their texts, each asked about as it grows, interleave."""
    loops = Loops()
    for which, length in asks:
        text = texts[which][:length]
        assert loops.end(text) == slow_end(text)


@pytest.mark.parametrize(("text", "end"), [
    ('"""Return a new' + " new" * 30, len('"""Return a') + 4 * 12),  # twelve copies of " new"
    ("self.y = x\n" + "        self.y = y\n" * 6, len("self.y = x") + 19 * 4),  # four copies of a line
    ("x = [" + "None, " * 12, len("x = [") + 6 * 8),
])
def test_a_word_or_line_over_and_over_is_a_loop(text, end):
    assert Loops().end(text) == end


@pytest.mark.parametrize("text", [
    "row = [" + "0, " * 60 + "]",  # no letter in the unit
    "# " + "-" * 120,
    "\n" + " " * 120 + "x",
    "fd(spitze)\nlt(120)\n" * 3,  # three copies of two lines: code does that
    "x" * (MIN_CHARS - 1),
])
def test_code_that_repeats_a_little_is_not_a_loop(text):
    assert Loops().end(text) is None


def test_the_standard_library_holds_at_most_one_loop_in_fifty_modules():
    """Real code, scanned whole (far longer than any middle): loops there are rare, and the ones there are
    (an HTML table closed five times over in cgitb) are the kind a fill should not write either."""
    root = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(root, "*.py")))[:100]
    texts = [open(path, encoding="utf-8", errors="replace").read()[:20000] for path in files]
    assert len(texts) == 100 and sum(Loops().end(text) is not None for text in texts) <= 2


def test_a_fill_ends_at_its_loop_only_while_fills_end_at_their_scope():
    raw = '"""Return a new' + " new" * 30
    hole = Hole("def add(a, b):\n    ", "\n")
    assert settled_middle(raw, hole) == ('"""Return a new' + " new" * 11, "loop")
    deltas = FillMode().deltas(Prepared(Prompt.of(""), 1, hole), iter(raw[i : i + 3] for i in range(0, len(raw), 3)))
    assert "".join(deltas) == '"""Return a new' + " new" * 11
    assert settled_middle(raw, Hole("def add(a, b):\n    ", "\n", end_at_scope=False)) == (raw, None)


def test_the_app_stops_a_fill_that_loops_and_says_why(nano_server):
    """nano-starcoder, greedy, writes "Return a new new new ..." into this hole; it went on to the token
    limit before."""
    body = {"mode": "fill", "code": "def add(a, b):\n    <FILL_HERE>\n", "stream": True,
            "params": {"max_new_tokens": 128, "temperature": 0}}
    with httpx.stream("POST", nano_server.url + "/api/generate", json=body, timeout=60) as response:
        events = list(sse_events(response))
    record = events[-1]
    assert record["finish_reason"] == "stop" and record["usage"]["completion_tokens"] < 64, record
    assert any("the same text over and over" in notice for notice in record["notices"]), record["notices"]
    assert "".join(e["delta"] for e in events[:-1]) == record["middle"]
    assert Loops().end(record["middle"]) == len(record["middle"])
