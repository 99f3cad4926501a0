"""Token probabilities and candidates through the service on both remote stand-ins: what each engine
is asked, and that what it answers lines up with the text (the real engines: tests/engines)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playground.backends.openai_compat import OpenAiCompletionsBackend
from playground.backends.tgi import TgiBackend
from playground.config import Settings
from playground.service import Playground
from playground.slots import ModelSlot
from playground.tech_assistant import load_tech_assistant
from support.standins.common import StandinConfig
from support.standins.fixtures import FAST_TIMEOUTS, RunningStandin, running_openai, running_tgi, starcoder_spec
from tests.conftest import as_json

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["tgi", "openai"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, RunningStandin, Playground]]:
    spec = starcoder_spec()
    running = running_tgi if request.param == "tgi" else running_openai
    with running() as standin:
        kind = TgiBackend if request.param == "tgi" else OpenAiCompletionsBackend
        backend = kind(spec, standin.url, timeouts=FAST_TIMEOUTS)
        playground = Playground(Settings(data_dir=tmp_path), {spec.id: ModelSlot(spec, backend, concurrency=8)},
                                load_tech_assistant())
        yield request.param, standin, playground
        backend.close()


def generate(playground: Playground, mode: str, params: dict):
    inputs = {"prompt": "def add(a, b):\n"} if mode == "complete" else {"code": "x = <FILL_HERE>\n"}
    run = playground.start(mode, None, inputs, params)
    pieces = list(run.pieces())
    assert run.record is not None
    return as_json(run.record), pieces


def sent(standin: RunningStandin) -> list[dict]:
    bodies = [r["body"] for r in standin.state.requests if r["path"] in ("/", "/v1/completions")]
    return [b.get("parameters", b) for b in bodies]


@pytest.mark.parametrize("mode", ["complete", "fill"])
def test_each_token_with_its_alternatives(engine, mode):
    kind, standin, playground = engine
    record, pieces = generate(playground, mode, {"temperature": 0, "max_new_tokens": 9, "logprobs": 3})
    [request] = sent(standin)
    assert request["top_n_tokens" if kind == "tgi" else "logprobs"] == 3
    generated = record.middle if mode == "fill" else record.text
    assert record.tokens and "".join(t["text"] for t in record.tokens) == generated
    assert all(t["top"][0]["text"] == t["text"] and len(t["top"]) == 3 for t in record.tokens)
    assert all("".join(t["text"] for t in tokens) == delta for delta, tokens in pieces)


def test_a_stop_that_cuts_a_token_keeps_the_tokens_joined(engine):
    _, _, playground = engine
    record, _ = generate(playground, "complete", {"temperature": 0, "max_new_tokens": 12, "logprobs": 1,
                                                  "stop": ["dd"]})  # inside the scripted " add"
    assert record.finish_reason == "stop" and record.text == "def a"
    assert "".join(t["text"] for t in record.tokens) == "def a" and record.tokens[-1]["text"] == " a"


def test_candidates_are_asked_as_the_engine_takes_them_and_repeat_with_the_seed(engine):
    kind, standin, playground = engine
    params = {"temperature": 0.8, "max_new_tokens": 4, "n": 3, "seed": 40}
    record, pieces = generate(playground, "complete", params)
    requests = sent(standin)
    if kind == "tgi":  # TGI makes one candidate a request: three, seeded 40, 41, 42
        assert sorted(r["seed"] for r in requests) == [40, 41, 42] and all("top_n_tokens" not in r for r in requests)
    else:  # the stand-in is vLLM, which takes n
        assert len(requests) == 1 and requests[0]["n"] == 3 and requests[0]["logprobs"] == 0
    assert pieces == [] and len(record.candidates) == 3
    assert all(c["mean_logprob"] is not None and c["count"] == 1 for c in record.candidates)
    assert record.text == record.candidates[0]["text"]
    again, _ = generate(playground, "complete", params)
    assert again.candidates == record.candidates


def test_a_tgi_with_fewer_alternatives_is_asked_again_within_its_limit(tmp_path):
    spec = starcoder_spec()
    with running_tgi(StandinConfig(max_top_n_tokens=2)) as standin:
        backend = TgiBackend(spec, standin.url, timeouts=FAST_TIMEOUTS)
        playground = Playground(Settings(data_dir=tmp_path), {spec.id: ModelSlot(spec, backend)},
                                load_tech_assistant())
        record, _ = generate(playground, "complete", {"temperature": 0, "max_new_tokens": 4, "logprobs": 5})
        backend.close()
    assert [r["top_n_tokens"] for r in sent(standin)] == [5, 2]
    assert all(len(t["top"]) == 2 for t in record.tokens)
    assert any("at most 2 alternatives" in n for n in record.notices)
