"""The modes on their own (``playground.modes``): each mode's inputs model, how it presents and streams
raw output (``present``, ``deltas``, ``offset``), how it restores a shared record, and ``Modes``, which
finds a mode by name and reads a stored record back with its generated part."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.backends.fake import FakeBackend
from playground.errors import InputError
from playground.modes import ModeContext, Modes, all_modes
from playground.params import GenerationParams
from playground.prompt import Prompt
from playground.prompting.budget import plan_budget
from playground.prompting.chat import CHAT_STOPS
from playground.record import BackendSummary, Generation, Shown
from playground.registry import FimTokens, ModelSpec
from playground.tech_assistant import load_tech_assistant

TA = load_tech_assistant()
MODES = Modes(TA)
SPEC = ModelSpec("fake", "fake", 2048, fim=FimTokens.starcoder())
FILL_CODE = "def f():\n    <FILL_HERE>\n    return result\n"


def build(mode: str, raw_inputs: dict):
    """The mode's prepared prompt for untrusted inputs, counted the way the fake backend counts."""
    counter = FakeBackend()
    ctx = ModeContext(SPEC, plan_budget(SPEC.context_length, 256),
                      lambda text: counter.count_tokens(Prompt.of(text)) if text else 0)
    return MODES[mode].build(MODES[mode].inputs.parse(raw_inputs), ctx)


def record(mode: str, inputs: dict, text: str, stop: tuple[str, ...] = ()) -> Generation:
    return Generation(id="g" * 22, mode=mode, model="fake", created_at="2026-01-01T00:00:00+00:00",
                      app_version="test", inputs=inputs, raw_prompt="", prompt_version=None,
                      params=GenerationParams(temperature=0.7, seed=7, stop=stop), backend=BackendSummary("fake"),
                      shown=Shown(text, text))


def chunked(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at the given positions (any order, repeats allowed): the pieces join into it."""
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


# -- the list of modes and finding one -------------------------------------------------------


def test_the_modes_are_listed_once_in_tab_order_with_their_capabilities():
    assert [mode.name for mode in all_modes(TA)] == list(MODES) == ["chat", "fill", "complete"]
    assert len(MODES) == 3
    assert {name: MODES[name].candidates for name in MODES} == {"chat": False, "fill": True, "complete": True}
    assert MODES["chat"].stops == CHAT_STOPS and MODES["fill"].stops == MODES["complete"].stops == ()
    assert MODES.named("fill") is MODES["fill"]


@pytest.mark.parametrize("name", ["nope", "Chat", "", None, 3, ["chat"], {"chat": 1}, b"chat"])
def test_named_refuses_anything_but_a_mode_name_and_lists_the_modes(name):
    with pytest.raises(InputError) as caught:
        MODES.named(name)
    assert caught.value.message.endswith("use one of chat, fill, complete.")


def test_named_does_not_echo_a_huge_name():
    with pytest.raises(InputError) as caught:
        MODES.named("x" * 3_000_000)
    assert len(caught.value.message) < 120 and "xxx..." in caught.value.message


def test_named_shows_a_name_ascii_safe():
    with pytest.raises(InputError) as caught:
        MODES.named("\ud800évil")
    assert caught.value.message.isascii() and "\\ud800" in caught.value.message


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "raw", "expected"), [
    ("complete", {"prompt": "x = ", "ignored": 1}, {"prompt": "x = "}),
    ("fill", {"code": FILL_CODE}, {"code": FILL_CODE, "filename": "", "repo_name": ""}),
    ("fill", {"code": FILL_CODE, "filename": "a.py"}, {"code": FILL_CODE, "filename": "a.py", "repo_name": ""}),
    ("chat", {"message": "Hi", "history": [["q", "a"]]}, {"message": "Hi", "history": [["q", "a"]]}),
    ("chat", {"message": "Hi", "system_prompt": None}, {"message": "Hi"}),
])
def test_good_inputs_become_what_build_reads(mode, raw, expected):
    assert MODES[mode].inputs.parse(raw) == expected


@pytest.mark.parametrize(("mode", "raw", "where"), [
    ("complete", {"prompt": ["SECRET-VALUE"]}, "prompt: "),
    ("complete", {}, "prompt: Field required"),
    ("complete", ["SECRET-VALUE"], "The body: "),
    ("fill", {"code": {"SECRET-VALUE": 1}}, "code: "),
    ("fill", {"code": FILL_CODE, "filename": ["SECRET-VALUE"]}, "filename: "),
    ("chat", {"message": 12345678}, "message: "),
    ("chat", {"history": "SECRET-VALUE"}, "history: "),
    ("chat", {"system_prompt": ["SECRET-VALUE"]}, "system_prompt: "),
    ("chat", {"messages": [{"role": "SECRET-VALUE", "content": "x"}]}, "messages.0.role: "),
    ("chat", {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 5}]}, "messages.1.content"),
])
def test_bad_inputs_name_the_field_without_echoing_the_value(mode, raw, where):
    with pytest.raises(InputError) as caught:
        MODES[mode].inputs.parse(raw)
    message = caught.value.message
    assert message.startswith(where)
    assert "SECRET" not in message and "12345678" not in message


def test_chat_messages_become_the_history_and_the_new_message():
    messages = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                {"role": "user", "content": [{"type": "text", "text": "q2 "}, {"type": "text", "text": "part"}]}]
    inputs = MODES["chat"].inputs.parse({"messages": messages, "message": "ignored"})
    assert inputs["message"] == "q2 part"
    assert inputs["history"] == messages[:2]
    assert build("chat", {"messages": messages}).inputs == {"messages": [["q1", "a1"], ["q2 part", None]]}


@pytest.mark.parametrize(("messages", "needle"), [
    ([], "messages must be a non-empty list"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "must come from the user"),
])
def test_chat_messages_must_end_with_the_user(messages, needle):
    with pytest.raises(InputError, match=needle):
        MODES["chat"].inputs.parse({"messages": messages})


def test_chat_records_a_system_prompt_of_the_users_own_but_not_the_servers():
    own = "A helpful robot.\n\nHuman: hi\n\nAssistant: hello\n"
    assert build("chat", {"message": "Hi", "system_prompt": own}).inputs["system_prompt"] == own
    assert "system_prompt" not in build("chat", {"message": "Hi", "system_prompt": TA.text}).inputs
    with pytest.raises(InputError, match="Human:"):
        build("chat", {"message": "Hi", "system_prompt": "no dialogues here"})


# -- presenting and streaming ----------------------------------------------------------------

# Whitespace of several kinds, so the chat reply's strip and the deltas' hold-back must agree.
CHAT_TEXT = st.text(st.sampled_from(list("ab \n\t\u3000\u00a0é")), max_size=30)
CUTS = st.lists(st.integers(0, 60), max_size=8)


@settings(max_examples=200, deadline=None)
@given(raw=CHAT_TEXT, cuts=CUTS)
def test_chat_deltas_join_into_the_stripped_reply_in_any_chunking(raw, cuts):
    chat = MODES["chat"]
    prepared = build("chat", {"message": "Hi"})
    deltas = list(chat.deltas(prepared, iter(chunked(raw, cuts))))
    shown = chat.present(prepared, raw)
    assert shown.generated == shown.text and shown.generated.strip() == raw.strip()  # at most indentation kept
    assert chat.present(prepared, shown.generated) == shown  # a record presents as itself
    assert "".join(deltas) == shown.generated
    assert all(deltas)  # no empty deltas reach a client
    start = chat.offset(raw)
    assert raw[start:start + len(shown.generated)] == shown.generated
    for k in range(len(deltas) + 1):  # a run stopped after k deltas records them as they were sent
        sent = "".join(deltas[:k])
        assert chat.present(prepared, sent).generated == sent


@pytest.mark.parametrize(("raw", "reply"), [
    (" Sure, use a set.\n", "Sure, use a set."),  # the space after "Assistant:"
    ("\n\n    return sorted(set(xs))\n", "    return sorted(set(xs))"),  # a first line of code keeps its indent
    (" \n  if x:\n    y()", "  if x:\n    y()"),
    ("    x = 1", "    x = 1"),
    (" \t \n", ""),
])
def test_chat_reply_keeps_the_indentation_of_a_first_line_of_code(raw, reply):
    chat = MODES["chat"]
    prepared = build("chat", {"message": "Hi"})
    assert chat.present(prepared, raw) == Shown(reply, reply)
    assert "".join(chat.deltas(prepared, iter(raw))) == reply  # one character at a time


@settings(max_examples=100, deadline=None)
@given(raw=st.text(max_size=30), cuts=CUTS)
def test_complete_deltas_are_the_raw_text_as_it_comes(raw, cuts):
    complete = MODES["complete"]
    prepared = build("complete", {"prompt": "x = "})
    pieces = chunked(raw, cuts)
    assert list(complete.deltas(prepared, iter(pieces))) == pieces
    assert complete.present(prepared, raw) == Shown(raw, raw)
    assert complete.offset(raw) == 0


FILL_PIECES = st.lists(st.sampled_from(["x = 1", "\n", "    ", "return", " result", "\n    return result\n", "r",
                                        "def g():", "\n\n", "(", ")"]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(parts=FILL_PIECES, cuts=CUTS)
def test_fill_deltas_join_into_the_middle_and_every_sent_prefix_presents_as_itself(parts, cuts):
    fill = MODES["fill"]
    prepared = build("fill", {"code": FILL_CODE})
    prefix, suffix = prepared.state.prefix, prepared.state.suffix
    raw = "".join(parts)
    deltas = list(fill.deltas(prepared, iter(chunked(raw, cuts))))
    shown = fill.present(prepared, raw)
    assert "".join(deltas) == shown.generated == shown.fields["middle"]
    assert shown.text == prefix + shown.generated + suffix
    start = fill.offset(raw)
    assert raw[start:start + len(shown.generated)] == shown.generated
    for k in range(len(deltas) + 1):
        sent = "".join(deltas[:k])
        assert fill.present(prepared, sent).generated == sent


def test_fill_splices_the_middle_without_the_repeated_suffix():
    fill = MODES["fill"]
    prepared = build("fill", {"code": FILL_CODE})
    shown = fill.present(prepared, "x = 1\n    return result\n")
    assert fill.generated_field == "middle"
    assert shown == Shown("def f():\n    x = 1\n\n    return result\n", "x = 1\n", {"middle": "x = 1\n"})


# -- restoring a share -----------------------------------------------------------------------


def test_chat_restores_the_conversation_ending_with_the_reply_and_the_users_stops():
    inputs = {"messages": [["q1", "a1"], ["q2", None]], "system_prompt": "own prompt"}
    restored = MODES["chat"].restore(record("chat", inputs, "the reply", stop=("END", *CHAT_STOPS)))
    assert restored.inputs == {"message": "", "system_prompt": "own prompt", "history": [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "the reply"}]}
    assert restored.params.stop == ("END",)
    assert (restored.params.temperature, restored.params.seed) == (0.7, 7)


def test_a_chat_restored_conversation_reads_back_as_the_same_history():
    prepared = build("chat", {"message": "q2", "history": [["q1", "a1"]]})
    restored = MODES["chat"].restore(record("chat", prepared.inputs, "a2"))
    again = build("chat", {"message": "q3", "history": restored.inputs["history"]})
    assert again.inputs["messages"] == [["q1", "a1"], ["q2", "a2"], ["q3", None]]


@pytest.mark.parametrize(("mode", "raw"), [
    ("fill", {"code": FILL_CODE, "filename": "src/a.py"}),
    ("complete", {"prompt": "def add(a, b):"}),
])
def test_fill_and_complete_restore_the_inputs_they_were_built_from(mode, raw):
    prepared = build(mode, raw)
    restored = MODES[mode].restore(record(mode, prepared.inputs, "x", stop=("END", "\nHuman:")))
    assert restored.inputs == raw
    assert restored.params.stop == ("END", "\nHuman:")  # no stops of their own: the user's all stay
    assert build(mode, restored.inputs).prompt == prepared.prompt


# -- reading a stored record -----------------------------------------------------------------


def test_read_record_finds_fills_generated_part_where_fill_keeps_it():
    stored = record("fill", {"code": FILL_CODE, "filename": ""}, "whole code")
    stored.shown = Shown("whole code", "the middle", {"middle": "the middle"})
    back = MODES.read_record(stored.to_dict())
    assert back.generated == "the middle" and back.text == "whole code"
    assert back == stored


@pytest.mark.parametrize("mode", ["chat", "complete", "no-such-mode"])
def test_read_record_takes_the_whole_text_elsewhere(mode):
    data = {**record(mode, {}, "the text").to_dict(), "middle": "not this"}
    back = MODES.read_record(data)
    assert back.generated == "the text" and back.shown.fields == {"middle": "not this"}
