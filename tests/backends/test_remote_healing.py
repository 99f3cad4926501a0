"""Token healing on remote engines: what is taken back, how each engine is told, and the text put back
together, over the TGI and vLLM STAND-INs (real HTTP; they check the constraint's shape, and their
scripted tokens follow it as the real engines' constrained decoding would)."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest

from playground.backends.base import Alternative, Chunk, Finished, TokenInfo
from playground.backends.flavours import GENERIC, LLAMA_CPP, VLLM, completion_request
from playground.backends.openai_compat import OpenAiCompletionsBackend
from playground.backends.remote_healing import engine_stops, start_gbnf, start_regex, without_healed
from playground.backends.tgi import TgiBackend
from playground.backends.wire import RemoteLimits, sampling, tgi_parameters
from playground.params import GenerationParams
from playground.prompt import Prompt, Special
from playground.prompting.budget import Budget
from playground.prompting.fill import build_fill
from playground.stream import Outcome, run_stream
from support.standins.common import Behaviour
from support.standins.fixtures import (  # noqa: F401 - the stand-ins are fixtures
    FAST_BACKOFF_S,
    FAST_TIMEOUTS,
    RunningStandin,
    collect,
    openai_standin,
    starcoder_spec,
    tgi_standin,
)

pytestmark = pytest.mark.timeout(30)

GREEDY = GenerationParams(max_new_tokens=8, temperature=0)
LIMITS = RemoteLimits(2048, 1024, 2047, 4)


@pytest.mark.parametrize(("text", "taken"), [
    ("def f(x):\n", "\n"), ("def f(x):\n    ", "\n    "), ("x = ", " "), ("if a:\n\t", "\n\t"),
    ("def f(x):\n    return x", ""), ("", ""), ("s = 'é'\n  ", "\n  "),
])
def test_what_is_taken_back_is_the_trailing_break(text, taken):
    prompt = Prompt.of(text)
    assert prompt.trailing_break() == taken
    assert prompt.taking_back(len(taken)).render() + taken == text


def test_a_prefix_suffix_middle_fill_heals_its_prefix_not_its_end():
    spec = starcoder_spec()
    prepared = build_fill("def add(a, b):\n    <FILL_HERE>\n\nprint(add(1, 2))\n", "", spec, Budget(900, 100, 1000),
                          len)
    prompt = prepared.prompt
    assert prompt.segments[-1] == Special("<fim_middle>") and prompt.trailing_break() == "\n    "
    assert prompt.taking_back(5).render().startswith("<fim_prefix>def add(a, b):<fim_suffix>")
    at_start = build_fill("<FILL_HERE>\nx = 1\n", "", spec, Budget(900, 100, 1000), len).prompt
    assert at_start.resumes is None and at_start.trailing_break() == ""


def test_each_engine_is_told_in_its_own_terms():
    request = replace(sampling(GREEDY, LIMITS, 10), starts_with="\n    ")
    assert tgi_parameters(request)["grammar"] == {"type": "regex", "value": start_regex("\n    ")}
    assert re.fullmatch(start_regex("\n    "), "\n        return x\n") and not re.fullmatch(start_regex("\n"), "x")
    assert completion_request(request, VLLM, frozenset()).kwargs["extra_body"]["structured_outputs"] == {
        "regex": start_regex("\n    ")}
    assert completion_request(request, LLAMA_CPP, frozenset()).kwargs["extra_body"]["grammar"] == (
        'root ::= "\\n    " [^\\x00]*')
    assert start_gbnf("\t") == 'root ::= "\\t" [^\\x00]*'
    assert "extra_body" not in completion_request(request, GENERIC, frozenset()).kwargs


@pytest.mark.parametrize("pieces", [["\n    ret", "urn é"], ["\n", "  ", "  return é"], ["\n    return é"]])
def test_the_taken_back_text_is_removed_from_each_candidates_start(pieces):
    events = [*(Chunk(p, 1, (TokenInfo(p, -0.5, (Alternative(p, -0.5), Alternative("\n" + p, -2.0))),), index)
                for index in (0, 1) for p in pieces), Finished("eos", 3, 6)]
    out = list(without_healed(iter(events), "\n    ", "healed"))
    for index in (0, 1):
        chunks = [e for e in out if isinstance(e, Chunk) and e.index == index]
        assert "".join(c.text for c in chunks) == "return é"
        assert "".join(t.text for c in chunks for t in c.details) == "return é"  # tokens join into the text
    assert out[-1].notices == ("healed",)


def test_an_engine_that_ignores_the_constraint_is_passed_through_and_said():
    out = list(without_healed(iter([Chunk("pass", 1), Finished("eos", 3, 1)]), "\n", "healed"))
    assert out[0].text == "pass" and "did not begin with the taken-back text" in out[-1].notices[-1]


def test_tgi_gets_a_regex_grammar_and_the_prompt_without_its_break(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(tokens=["\n", "    return", " a"]))
    tgi = TgiBackend(starcoder_spec(), tgi_standin.url, timeouts=FAST_TIMEOUTS, retry_backoff_s=FAST_BACKOFF_S)
    result = collect(tgi.stream(Prompt.of("def add(a, b):\n"), GREEDY, threading.Event()))
    body = tgi_standin.state.requests[-1]["body"]
    assert body["inputs"] == "def add(a, b):" and body["parameters"]["grammar"]["type"] == "regex"
    assert result.text == "    return a"
    assert any("asked (grammar, regex)" in n for n in result.finished.notices)
    off = collect(tgi.stream(Prompt.of("def add(a, b):\n"), replace(GREEDY, heal=False), threading.Event()))
    assert tgi_standin.state.requests[-1]["body"]["inputs"] == "def add(a, b):\n"
    assert "grammar" not in tgi_standin.state.requests[-1]["body"]["parameters"] and off.finished.notices == ()


def test_vllm_gets_structured_outputs_and_the_probabilities_stay_the_models(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(tokens=["\n        return", " a"]))
    vllm = OpenAiCompletionsBackend(starcoder_spec(), openai_standin.url, timeouts=FAST_TIMEOUTS,
                                    retry_backoff_s=FAST_BACKOFF_S)
    result = collect(vllm.stream(Prompt.of("def add(a, b):\n    "), replace(GREEDY, logprobs=1), threading.Event()))
    body = openai_standin.state.requests[-1]["body"]
    assert body["prompt"] == "def add(a, b):" and body["structured_outputs"]["regex"] == start_regex("\n    ")
    assert result.text == "    return a"
    tokens = [t for c in result.chunks for t in c.details]
    assert "".join(t.text for t in tokens) == "    return a" and tokens[0].logprob < 0


def test_a_stop_that_could_match_in_the_taken_back_text_stays_on_our_side(tgi_standin: RunningStandin) -> None:
    """The engine writes the taken-back "\n" first: a stop of "\n" sent to it would end the text at once."""
    assert engine_stops(("\n", "\n    ret", "  r", "return", "\n\n"), "\n    ") == ("return", "\n\n")
    tgi_standin.state.script(Behaviour(tokens=["\n", "    return", " a", "\n", "x = 1"]))
    tgi = TgiBackend(starcoder_spec(), tgi_standin.url, timeouts=FAST_TIMEOUTS, retry_backoff_s=FAST_BACKOFF_S)
    outcome = Outcome()
    shown = "".join(run_stream(tgi, Prompt.of("def add(a, b):\n"), replace(GREEDY, stop=("\n",)), threading.Event(),
                               outcome, time_limit_s=10))
    assert "stop" not in tgi_standin.state.requests[-1]["body"]["parameters"]
    assert shown == outcome.text == "    return a" and outcome.finish_reason == "stop"  # cut on our side
