"""Chat mode: the Tech Assistant layout, dropping order under a tight context, and refusals."""

from __future__ import annotations

import pytest

from playground.errors import PromptTooLongError
from playground.prompting.budget import Budget
from playground.prompting.chat import CHAT_STOPS, build_chat, parse_tech_assistant
from playground.tech_assistant import load_tech_assistant

TA = parse_tech_assistant(
    "Intro paragraph.\n\nHuman: q1\n\nAssistant: a1\n\n-----\n\nHuman: q2\n\nAssistant: a2\n\n-----\n", "test/v0"
)


def chars(text: str) -> int:
    return len(text)


def test_parse_splits_preamble_and_dialogues():
    assert TA.preamble == "Intro paragraph."
    assert TA.dialogues == ("Human: q1\n\nAssistant: a1", "Human: q2\n\nAssistant: a2")


def test_shipped_prompt_meets_the_format():
    ta = load_tech_assistant()
    assert ta.version == "tech_assistant/v1"
    assert len(ta.dialogues) >= 8
    assert 9000 <= len(ta.text) <= 12500
    assert all(d.startswith("Human:") and "\n\nAssistant:" in d for d in ta.dialogues)


def test_layout_and_stops():
    prepared = build_chat(TA, [("hi", "hello")], "and now?", Budget(10_000, 100, 9_900), chars)
    assert prepared.prompt.render() == (
        "Intro paragraph.\n\n"
        "Human: q1\n\nAssistant: a1\n\n-----\n\n"
        "Human: q2\n\nAssistant: a2\n\n-----\n\n"
        "Human: hi\n\nAssistant: hello\n\n"
        "Human: and now?\n\nAssistant:"
    )
    assert prepared.stops == CHAT_STOPS
    assert prepared.notices == ()
    assert prepared.prompt_version == "test/v0"


def full_size(history, message):
    return len(build_chat(TA, history, message, Budget(10_000, 100, 9_900), chars).prompt.render())


@pytest.mark.parametrize(
    ("dropped_examples", "dropped_turns"),
    [(1, 0), (2, 0), (2, 1), (2, 2)],
)
def test_drops_examples_oldest_first_then_turns(dropped_examples, dropped_turns):
    history = [("first question", "first answer"), ("second question", "second answer")]
    example_sizes = [len(d) + len("\n\n-----\n\n") for d in TA.dialogues]
    turn_sizes = [len(f"Human: {u}\n\nAssistant: {a}\n\n") for u, a in history]
    limit = full_size(history, "now") - sum(example_sizes[:dropped_examples]) - sum(turn_sizes[:dropped_turns])
    prepared = build_chat(TA, history, "now", Budget(limit + 10, 10, limit), chars)
    text = prepared.prompt.render()
    kept_examples = TA.dialogues[dropped_examples:]
    assert all(d in text for d in kept_examples)
    assert all(d not in text for d in TA.dialogues[:dropped_examples])
    assert ("first question" in text) == (dropped_turns < 1)
    assert ("second question" in text) == (dropped_turns < 2)
    assert text.endswith("Human: now\n\nAssistant:")
    assert len(text) <= limit
    assert bool(prepared.notices) == bool(dropped_examples or dropped_turns)


def test_a_message_that_cannot_fit_is_refused_with_numbers():
    with pytest.raises(PromptTooLongError, match=r"is \d+ tokens.*only 50 of the model's 100 fit"):
        build_chat(TA, [], "x" * 200, Budget(100, 50, 50), chars)


def test_meter_breakdown_adds_up():
    prepared = build_chat(TA, [("a", "b")], "c", Budget(1000, 100, 900), chars)
    b = prepared.state
    assert b["prompt"] + b["history"] + b["free"] + b["reply"] == b["context"]
