"""Loops: the same text back to back, found where it begins to count, cut after two copies, and never
found in rows of symbols."""

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
from playground.prompting.loops import MAX_UNIT, MIN_CHARS, MIN_COPIES, Loop, Loops
from playground.prompting.prepared import Prepared

from ..web.test_api import sse_events


def slow_find(text: str) -> Loop | None:
    """The rule as written, checked the long way at every end of the text."""
    hold = 0
    for end in range(1, len(text) + 1):
        pairs = {}  # unit -> characters repeating it back to back, ending at ``end``
        for unit in range(1, min(MAX_UNIT, end - 1) + 1):
            run = 0
            while end - 1 - run - unit >= 0 and text[end - 1 - run] == text[end - 1 - run - unit]:
                run += 1
            if run >= unit and any(c.isalpha() for c in text[end - unit : end]):
                pairs[unit] = run
        hold = min((end - run + unit for unit, run in pairs.items()), default=end)
        if any(run + unit >= max(MIN_COPIES, -(-MIN_CHARS // unit)) * unit for unit, run in pairs.items()):
            return Loop(hold, True)
    return Loop(hold, False) if hold < len(text) else None


TEXT = st.text(alphabet="ab \n0", max_size=160)


@given(TEXT)
def test_the_first_loop_is_where_the_rule_first_holds(text):
    assert Loops().find(text) == slow_find(text)


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 160)), max_size=20), st.lists(TEXT, min_size=3, max_size=3))
def test_texts_asked_about_in_any_order_get_the_same_answers(asks, texts):
    """Candidates share one hole: their texts, each asked about as it grows, interleave."""
    loops = Loops()
    for which, length in asks:
        text = texts[which][:length]
        assert loops.find(text) == slow_find(text)


@pytest.mark.parametrize(("text", "kept"), [
    ('"""Return a new' + " new" * 30, '"""Return a new new'),  # found at twelve copies of " new"
    ("self.y = x\n" + "        self.y = y\n" * 6, "self.y = x\n        self.y = y\n        self.y = y"),  # at four
    ("x = [" + "None, " * 12, "x = [None, None, "),  # at eight
])
def test_a_word_or_line_over_and_over_is_a_loop_cut_after_two_copies(text, kept):
    assert Loops().find(text) == Loop(len(kept), True) and text.startswith(kept)


def test_two_copies_hold_back_what_follows_while_it_repeats_them():
    loops = Loops()
    assert loops.find("x = a new new") is None  # two copies: nothing past them yet
    assert loops.find("x = a new new ne") == Loop(len("x = a new new"), False)
    assert loops.find("x = a new new newt") is None  # the run broke: nothing held
    assert loops.find("all") is None


@pytest.mark.parametrize("text", [
    "row = [" + "0, " * 60 + "]",  # no letter in the unit
    "# " + "-" * 120,
    "\n" + " " * 120 + "x",
    "fd(spitze)\nlt(120)\n" * 3,  # three copies of two lines: code does that
    "x" * (MIN_CHARS - 1),
])
def test_code_that_repeats_a_little_is_not_a_loop(text):
    loop = Loops().find(text)
    assert loop is None or not loop.final  # at most held back while it might go on


def test_the_standard_library_holds_at_most_one_loop_in_fifty_modules():
    """Real code, scanned whole (far longer than any middle): loops there are rare, and the ones there are
    (an HTML table closed five times over in cgitb) are the kind a fill should not write either."""
    root = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(root, "*.py")))[:100]
    texts = [open(path, encoding="utf-8", errors="replace").read()[:20000] for path in files]
    assert len(texts) == 100 and sum(bool((loop := Loops().find(t)) and loop.final) for t in texts) <= 2


def test_a_fill_ends_at_its_loop_only_while_fills_end_at_their_scope():
    raw = '"""Return a new' + " new" * 30
    hole = Hole("def add(a, b):\n    ", "\n")
    assert settled_middle(raw, hole) == ('"""Return a new new', "loop")
    deltas = FillMode().deltas(Prepared(Prompt.of(""), 1, hole), iter(raw[i : i + 3] for i in range(0, len(raw), 3)))
    assert "".join(deltas) == '"""Return a new new'
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
    assert Loops().find(record["middle"]) is None  # two copies are left of the loop
