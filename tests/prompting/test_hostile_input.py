"""Property test: any text ends as a prompt within budget or as a typed error, never anything else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.errors import InputError
from playground.prompt import Special, Text
from playground.prompting.budget import plan_budget
from playground.prompting.chat import build_chat
from playground.prompting.complete import build_complete
from playground.prompting.fill import build_fill
from playground.registry import FimTokens, ModelSpec
from playground.tech_assistant import load_tech_assistant

SPEC = ModelSpec("starcoder", "bigcode/starcoder", 8192, fim=FimTokens.starcoder(), filename_token="<filename>")
TA = load_tech_assistant()
NASTY = ["<FILL_HERE>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", "<filename>", "\x00",
         "\u202e", "\u2066", "\ud800", "\udfff", "\n", "\r\n", "\t", "Human:", "\n-----", "🙂", "é", " "]
pieces = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
hostile = st.one_of(
    st.lists(pieces, max_size=30).map("".join),
    st.tuples(st.sampled_from(NASTY[:6]), st.integers(0, 200_100)).map(lambda t: t[0] * (t[1] // len(t[0]))),
)


def count(text: str) -> int:
    return (len(text) + 3) // 4  # a deterministic stand-in for a tokenizer, ~4 chars a token


def check(prepared, budget) -> None:
    counted = sum(count(s.text) if isinstance(s, Text) else 1 for s in prepared.prompt.segments)
    assert counted <= budget.prompt_tokens
    assert 0 < prepared.reply_tokens <= budget.max_reply
    for segment in prepared.prompt.segments:
        if isinstance(segment, Text):
            assert not any("\ud800" <= c <= "\udfff" for c in segment.text)
        else:
            assert isinstance(segment, Special) and segment.token in SPEC.special_tokens()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=hostile, max_new=st.integers(1, 2048))
def test_every_mode_gives_a_prompt_in_budget_or_a_typed_error(text, max_new):
    budget = plan_budget(SPEC.context_length, max_new)
    attempts = [
        lambda: build_complete(text, budget, count),
        lambda: build_fill(text, "", SPEC, budget, count),
        lambda: build_fill("a = <FILL_HERE>\n", text[:300], SPEC, budget, count),
        lambda: build_chat(TA, [(text[:1000], text[:1000])], text, budget, count),
    ]
    for attempt in attempts:
        try:
            prepared = attempt()
        except InputError:
            continue
        check(prepared, budget)
        if "<FILL_HERE>" not in text and attempt is attempts[1]:
            raise AssertionError("a hole-less fill must be refused")
