"""Loops: the same text back to back, found where it begins to count, cut after two copies by the stream
stage in every mode, and never found in rows of symbols."""

from __future__ import annotations

import glob
import os

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground.params import GenerationParams
from playground.prompting.loops import MAX_UNIT, MIN_CHARS, MIN_COPIES, MIN_DIGIT_CHARS, Loop, Loops
from playground.stream import StopCutter
from support.servers import sse_events


def slow_find(text: str) -> Loop | None:
    """The rule as written, checked the long way at every end of the text."""
    hold = 0
    for end in range(1, len(text) + 1):
        pairs = {}  # unit -> characters repeating it back to back, ending at ``end``
        for unit in range(1, min(MAX_UNIT, end - 1) + 1):
            run = 0
            while end - 1 - run - unit >= 0 and text[end - 1 - run] == text[end - 1 - run - unit]:
                run += 1
            piece = text[end - unit : end]
            chars = MIN_CHARS if any(c.isalpha() for c in piece) else MIN_DIGIT_CHARS
            if run >= unit and any(c.isalpha() or c.isdigit() for c in piece):
                pairs[unit] = (run, max(MIN_COPIES, -(-chars // unit)) * unit)
        hold = min((end - run + unit for unit, (run, _) in pairs.items()), default=end)
        if any(run + unit >= size for unit, (run, size) in pairs.items()):
            return Loop(hold, True)
    return Loop(hold, False) if hold < len(text) else None


TEXT = st.text(alphabet="ab \n0", max_size=240)


@given(TEXT)
def test_the_first_loop_is_where_the_rule_first_holds(text):
    assert Loops().find(text) == slow_find(text)


@given(TEXT, st.lists(st.integers(0, 240), max_size=20))
def test_a_text_asked_about_as_it_grows_gets_the_answers_of_each_whole_text(text, lengths):
    loops = Loops()
    for length in sorted(lengths):
        assert loops.find(text[:length]) == slow_find(text[:length])


@pytest.mark.parametrize(("text", "kept"), [
    ('"""Return a new' + " new" * 30, '"""Return a new new'),  # found at twelve copies of " new"
    ("self.y = x\n" + "        self.y = y\n" * 6, "self.y = x\n        self.y = y\n        self.y = y"),  # at four
    ("x = [" + "None, " * 12, "x = [None, None, "),  # at eight
    ("return (n, 2, 2, 2, 3" + ", 2" * 40, "return (n, 2, 2, 2, 3, 2, 2"),  # digits alone: at 32
])
def test_a_word_or_line_over_and_over_is_a_loop_cut_after_two_copies(text, kept):
    assert Loops().find(text) == Loop(len(kept), True) and text.startswith(kept)


def test_two_copies_hold_back_what_follows_while_it_repeats_them():
    loops = Loops()
    assert loops.find("x = a new new") is None  # two copies: nothing past them yet
    assert loops.find("x = a new new ne") == Loop(len("x = a new new"), False)
    assert loops.find("x = a new new newt") is None  # the run broke: nothing held
    assert Loops().find("all") is None


@pytest.mark.parametrize("text", [
    "row = [" + "0, " * 30 + "]",  # digits alone, not long enough
    "# " + "-" * 120,
    "\n" + " " * 120 + "x",
    "fd(spitze)\nlt(120)\n" * 3,  # three copies of two lines: code does that
    "x" * (MIN_CHARS - 1),
])
def test_code_that_repeats_a_little_is_not_a_loop(text):
    loop = Loops().find(text)
    assert loop is None or not loop.final  # at most held back while it might go on


def test_the_standard_library_holds_at_most_one_loop_in_a_hundred_modules():
    """Real code, scanned over far more than a middle's length: loops there are rare (bench_loops.py
    counts them over site-packages too)."""
    root = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(root, "*.py")))[:100]
    texts = [open(path, encoding="utf-8", errors="replace").read()[:8000] for path in files]
    assert len(texts) == 100 and sum(bool((loop := Loops().find(t)) and loop.final) for t in texts) <= 1


@given(TEXT, st.lists(st.integers(1, 7), max_size=40), st.sampled_from([(), ("\n\n",), ("a b",)]))
def test_the_stream_gives_out_the_text_up_to_its_first_loop_in_any_chunking(text, cuts, stops):
    pieces, rest = [], text
    for size in cuts:
        pieces.append(rest[:size])
        rest = rest[size:]
    pieces.append(rest)
    cutter = StopCutter.of(GenerationParams(stop=stops))
    given_out = "".join(cutter.feed(piece) for piece in pieces) + cutter.flush()
    alone = StopCutter.of(GenerationParams(stop=stops, stop_loops=False))
    without = "".join(alone.feed(piece) for piece in pieces) + alone.flush()
    loop = slow_find(without)
    assert given_out == (without[: loop.at] if loop and loop.final else without)
    assert cutter.looped == bool(loop and loop.final)


def test_a_loop_in_a_stream_stops_it_after_two_copies_and_off_it_runs_on():
    text = '"""Return a new' + " new" * 30
    cutter = StopCutter.of(GenerationParams())
    assert "".join(cutter.feed(text[i : i + 3]) for i in range(0, len(text), 3)) == '"""Return a new new'
    assert cutter.stopped and cutter.looped
    off = StopCutter.of(GenerationParams(stop_loops=False))
    assert off.feed(text) == text and not off.stopped


@pytest.mark.parametrize(("inputs", "field"), [
    ({"mode": "fill", "code": "def add(a, b):\n    <FILL_HERE>\n"}, "middle"),  # "Return a new new new ..."
    ({"mode": "complete", "prompt": "print("}, "text"),  # "self.name = name" line after line
])
def test_the_app_stops_a_loop_says_why_and_runs_on_when_asked(nano_server, inputs, field):
    """nano-starcoder, greedy, loops on both of these; they went on to the token limit before."""
    params = {"max_new_tokens": 128, "temperature": 0}
    body = {**inputs, "stream": True, "params": params}
    with httpx.stream("POST", nano_server.url + "/api/generate", json=body, timeout=60) as response:
        events = list(sse_events(response))
    record = events[-1]
    assert record["finish_reason"] == "stop" and record["usage"]["completion_tokens"] < 64, record
    assert any("the same text over and over" in notice for notice in record["notices"]), record["notices"]
    assert "".join(e["delta"] for e in events[:-1]) == record[field]
    assert Loops().find(record[field]) is None  # two copies are left of the loop
    body = {**inputs, "params": {**params, "stop_loops": False}}
    record = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert record["finish_reason"] == "length" and record["usage"]["completion_tokens"] == 128
    assert not any("over and over" in notice for notice in record["notices"])
