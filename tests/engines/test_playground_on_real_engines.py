"""The playground's OpenAI-compatible backend against REAL engines serving nano-starcoder.

``transformers serve`` and llama.cpp's server each run the same matrix through the real
``Playground`` service: complete, fill and chat; streamed deltas against the record; greedy
against the engine's own answer to the recorded raw prompt; a seeded sample twice; stop
sequences; the context edge; and the engine killed mid-stream, then restarted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from playground.backends.openai_compat import OpenAiCompletionsBackend
from playground.config import Settings
from playground.prompting.fill import split_hole, strip_suffix_echo
from playground.registry import load_registry
from playground.service import Playground
from playground.slots import ModelSlot
from playground.tech_assistant import load_tech_assistant
from support.engines import RunningEngine
from tests.conftest import as_json
from tests.engines.test_real_engines_smoke import llama_engine, transformers_engine  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(240)
# Healing off where a test compares with the engine asked directly: healing changes the prompt it is sent.
GREEDY = {"temperature": 0, "max_new_tokens": 24, "heal": False}


@pytest.fixture(scope="module", params=["transformers", "llama.cpp"])
def engine(request: pytest.FixtureRequest) -> RunningEngine:
    name = "transformers_engine" if request.param == "transformers" else "llama_engine"
    engine: RunningEngine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def playground(engine: RunningEngine, tmp_path: Path) -> Iterator[Playground]:
    spec = load_registry()["nano-starcoder"]
    backend = OpenAiCompletionsBackend(spec, engine.api_base)
    slot = ModelSlot(spec, backend, concurrency=4)
    playground = Playground(Settings(data_dir=tmp_path), {spec.id: slot}, load_tech_assistant())
    yield playground
    backend.close()


def run(playground: Playground, mode: str, inputs: dict[str, object], params: dict[str, object]):
    started = playground.start(mode, None, inputs, params)
    deltas = list(started)
    assert started.record is not None
    return deltas, as_json(started.record)


def engine_answer(engine: RunningEngine, raw_prompt: str, max_tokens: int, penalty: float) -> str:
    """The engine's own greedy answer, asked directly (llama.cpp: with the same penalty, spelled its way)."""
    body = {"model": engine.model, "prompt": raw_prompt, "max_tokens": max_tokens, "temperature": 0,
            "top_k": 0, "top_p": 1.0, "repeat_penalty": penalty}
    if "llama" not in engine.engine:
        body = {k: v for k, v in body.items() if k in ("model", "prompt", "max_tokens", "temperature")}
    response = httpx.post(engine.api_base + "/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["text"])


@pytest.mark.parametrize(("mode", "inputs"), [
    ("complete", {"prompt": "def fibonacci(n):\n    "}),
    ("fill", {"code": "def add(a, b):\n    <FILL_HERE>\n    return c\n"}),
])
def test_greedy_with_the_models_defaults_equals_the_engines_own_answer(playground, engine, mode, inputs):
    deltas, record = run(playground, mode, inputs, GREEDY)  # nano's default repetition penalty included
    assert record.finish_reason in ("length", "eos") and record.error is None
    penalty = record.params["repetition_penalty"]
    answer = engine_answer(engine, record.raw_prompt, record.usage["completion_tokens"], penalty)
    if mode == "fill":  # the FIM tokens reached the engine as tokens, not as text
        assert record.raw_prompt.startswith("<fim_prefix>") and record.middle is not None
        answer = strip_suffix_echo(answer, split_hole(inputs["code"])[1])  # a repeat of the code after the hole
        assert record.middle == answer
    assert "".join(deltas) == answer
    assert any("repetition_penalty" in n for n in record.notices) or "llama" in engine.engine


def test_token_healing_uses_the_engines_grammar_or_says_it_cannot(playground, engine):
    """llama.cpp's server takes a GBNF grammar: the prompt's trailing indentation is taken back and the
    output must begin with it, so the body comes first. transformers serve has no such constraint: the
    prompt goes as typed, and the record says so."""
    prompt = "def fibonacci(n):\n    "
    deltas, record = run(playground, "complete", {"prompt": prompt}, {**GREEDY, "heal": True})
    assert record.error is None and "".join(deltas) == record.text
    if "llama" in engine.engine:
        assert any("GBNF grammar" in n for n in record.notices), record.notices
        assert not any("did not begin" in n for n in record.notices)  # the engine kept to the grammar
        assert (prompt + record.text).split("\n")[1].startswith("    ")
    else:
        assert any("Token healing is not available" in n for n in record.notices), record.notices
        assert record.text == run(playground, "complete", {"prompt": prompt}, GREEDY)[1].text


def test_chat_deltas_join_into_the_reply(playground):
    deltas, record = run(playground, "chat", {"message": "How do I reverse a list in Python?", "history": []},
                         {"temperature": 0, "max_new_tokens": 40})
    assert "".join(deltas) == record.text and record.text == record.text.strip()


def test_a_stop_sequence_is_reported_as_stop_and_cut(playground):
    _, free = run(playground, "complete", {"prompt": "def fibonacci(n):\n    "}, GREEDY)
    stop = free.text.strip()[:3]
    _, record = run(playground, "complete", {"prompt": "def fibonacci(n):\n    "}, {**GREEDY, "stop": [stop]})
    assert record.finish_reason == "stop" and stop not in record.text


def test_a_seeded_sample_repeats_and_another_seed_differs(playground):
    params = {"temperature": 1.0, "top_p": 1.0, "seed": 11, "max_new_tokens": 24}
    first = run(playground, "complete", {"prompt": "import os\n"}, params)[1]
    assert first.error is None and not any("not applied" in n for n in first.notices)
    assert run(playground, "complete", {"prompt": "import os\n"}, params)[1].text == first.text
    others = {run(playground, "complete", {"prompt": "import os\n"}, {**params, "seed": s})[1].text for s in (1, 2, 3)}
    assert others - {first.text}  # sampling really happens: some other seed writes something else


def test_the_context_edge_is_kept_and_said(playground):
    prompt = "x = 1\n" * 60  # about 300 tokens of nano's 512
    _, record = run(playground, "complete", {"prompt": prompt}, {"temperature": 0, "max_new_tokens": 400})
    assert record.error is None
    assert record.usage["prompt_tokens"] + record.usage["completion_tokens"] <= 512
    assert any("at most" in n for n in record.notices)  # the reply was budgeted to what fits


def test_the_engine_killed_mid_stream_keeps_the_partial_text_then_serves_again(playground, engine):
    # A pattern to go on with: greedy, any model keeps writing it until it is stopped.
    started = playground.start("complete", None, {"prompt": "x = 1\n" * 20},
                               {"temperature": 0, "max_new_tokens": 400, "stop": ["<never>"]})
    deltas = []
    for delta in started:
        deltas.append(delta)
        if len(deltas) == 3:
            engine.kill()  # SIGKILL while the stream is open
    assert started.record is not None
    assert started.record.finish_reason == "error" and "interrupted" in (started.record.error or "")
    assert started.record.text == "".join(deltas)
    engine.restart()
    _, record = run(playground, "complete", {"prompt": "x = 1\n" * 20}, GREEDY)
    assert record.error is None and record.text


def test_a_folder_and_an_id_of_your_own_reach_transformers_serve(transformers_engine, tmp_path):  # noqa: F811
    """--model as a folder outside the registry: its context and FIM tokens come from its files, and the
    name the engine is pinned to is learned from its first refusal. --extra-models takes any id."""
    import shutil

    from playground.bootstrap import build_playground
    from playground.config_types import ExtraModel

    folder = tmp_path / "my-starcoder"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(__file__).resolve().parents[2] / "models" / "nano-starcoder" / name, folder / name)
    api = transformers_engine.api_base
    settings = Settings(backend="openai", endpoint=api, model=str(folder), data_dir=tmp_path,
                        extra_models=(ExtraModel("my-nano", "openai", api),))
    playground, _ = build_playground(settings)
    try:
        assert playground.slot(str(folder)).spec.context_length == 512
        assert playground.slot(str(folder)).spec.fim is not None
        _, record = run(playground, "fill", {"code": "def add(a, b):\n    <FILL_HERE>\n"}, GREEDY)
        assert record.error is None and record.raw_prompt.startswith("<fim_prefix>")
        extra = playground.start("complete", "my-nano", {"prompt": "import os\n"}, GREEDY)
        list(extra)
        assert extra.record is not None and extra.record.error is None and extra.record.model == "my-nano"
    finally:
        playground.shutdown()


def test_without_a_tokenizer_file_llama_cpp_counts_the_tokens(llama_engine, tmp_path):  # noqa: F811
    """An id with no files here: prompt tokens come from llama.cpp's /extras/tokenize, exactly."""
    from tokenizers import Tokenizer

    from playground.registry import ModelSpec

    spec = ModelSpec("my-nano", "my-nano", 512, fim=load_registry()["nano-starcoder"].fim)
    backend = OpenAiCompletionsBackend(spec, llama_engine.api_base)
    playground = Playground(Settings(data_dir=tmp_path), {"my-nano": ModelSlot(spec, backend)},
                            load_tech_assistant())
    try:
        _, record = run(playground, "complete", {"prompt": "def fibonacci(n):\n    "}, GREEDY)
        nano = Tokenizer.from_file(str(Path(__file__).resolve().parents[2] / "models/nano-starcoder/tokenizer.json"))
        assert record.usage["prompt_tokens"] == len(nano.encode(record.raw_prompt, add_special_tokens=False).ids)
        assert not any("estimated" in n for n in record.notices)
    finally:
        backend.close()


def test_with_nothing_to_count_with_the_record_says_the_counts_are_estimated(transformers_engine, tmp_path):  # noqa: F811
    from playground.registry import ModelSpec

    spec = ModelSpec("my-nano", "models/nano-starcoder-elsewhere", 512)
    backend = OpenAiCompletionsBackend(spec, transformers_engine.api_base)
    playground = Playground(Settings(data_dir=tmp_path), {"my-nano": ModelSlot(spec, backend)},
                            load_tech_assistant())
    try:
        _, record = run(playground, "complete", {"prompt": "import os\n"}, GREEDY)
        assert record.error is None  # the pinned model name was learned from the engine's refusal
        assert record.usage["prompt_tokens"] > 0  # transformers serve sends usage: taken as exact
    finally:
        backend.close()


def test_completion_tokens_count_tokens_not_framing_chunks(playground):
    """llama.cpp sends no usage and ends with an empty chunk; neither may change the count."""
    _, record = run(playground, "complete", {"prompt": "x = [\n"}, {"temperature": 0, "max_new_tokens": 12,
                                                                     "repetition_penalty": 1.0})
    if record.finish_reason == "length":
        assert record.usage["completion_tokens"] == 12
    else:
        assert 0 < record.usage["completion_tokens"] < 12


WEIGHED = {"temperature": 0, "max_new_tokens": 16, "logprobs": 3, "repetition_penalty": 1.0}


def test_token_probabilities_come_from_the_engine_or_a_notice_says_they_do_not(playground, engine):
    _, record = run(playground, "complete", {"prompt": "def fibonacci(n):\n    "}, WEIGHED)
    if "llama" not in engine.engine:  # transformers serve takes logprobs and ignores it: said, never made up
        assert record.tokens is None and any("sent no token probabilities" in n for n in record.notices)
        return
    assert record.tokens and "".join(t["text"] for t in record.tokens) == record.text
    for token in record.tokens:  # greedy, no penalty: the chosen token is the engine's best
        assert token["top"][0]["text"] == token["text"]
        assert token["top"][0]["logprob"] == pytest.approx(token["logprob"], abs=1e-4)
        assert 1 <= len(token["top"]) <= 3


def test_llama_cpp_and_the_local_model_weigh_the_same_tokens_alike(llama_engine, nano_playground, tmp_path):  # noqa: F811
    """Two implementations of one model: llama.cpp's logprobs are the raw distribution, the local backend's
    are taken before temperature and after the penalty, so with no penalty they must agree."""
    spec = load_registry()["nano-starcoder"]
    backend = OpenAiCompletionsBackend(spec, llama_engine.api_base)
    remote = Playground(Settings(data_dir=tmp_path), {spec.id: ModelSlot(spec, backend)}, load_tech_assistant())
    try:
        _, theirs = run(remote, "complete", {"prompt": "import os\n\n\ndef main():\n"}, {**WEIGHED, "heal": False})
    finally:
        backend.close()
    # The same prompt for both: healing off, so that each engine weighs exactly the prompt as typed.
    _, ours = run(nano_playground, "complete", {"prompt": "import os\n\n\ndef main():\n"}, {**WEIGHED, "heal": False})
    assert [t["text"] for t in theirs.tokens] == [t["text"] for t in ours.tokens]
    assert [t["logprob"] for t in theirs.tokens] == pytest.approx([t["logprob"] for t in ours.tokens], abs=0.02)


def test_candidates_from_an_engine_that_ignores_n_repeat_with_the_seed(playground):
    params = {"temperature": 1.0, "top_p": 1.0, "seed": 5, "max_new_tokens": 12, "n": 3}
    _, first = run(playground, "complete", {"prompt": "import os\n"}, params)
    assert first.candidates and sum(c["count"] for c in first.candidates) == 3
    assert len(first.candidates) > 1  # n requests with seeds 5, 6, 7: not one answer three times
    scores = [c["mean_logprob"] for c in first.candidates]
    assert scores == sorted(scores, key=lambda s: -math.inf if s is None else s, reverse=True)
    _, again = run(playground, "complete", {"prompt": "import os\n"}, params)
    assert [(c["text"], c["count"]) for c in again.candidates] == [(c["text"], c["count"]) for c in first.candidates]
