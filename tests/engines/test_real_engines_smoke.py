"""Smoke tests against REAL engines serving nano-starcoder: ``transformers serve`` and llama.cpp's server.

They pin down what docs/engines.md reports, so a version bump that changes an engine's behaviour
shows up here first. Each engine starts once per module (about 5 s and under 1 s); a test is
skipped with the reason when its engine (or, for llama.cpp, the GGUF converter) is not available.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.engines import (
    EngineError,
    RunningEngine,
    engine_available,
    start_llama_cpp_server,
    start_transformers_serve,
)
from support.gguf import convert_to_gguf

REPO = Path(__file__).resolve().parents[2]
NANO_REL = "models/nano-starcoder"  # the registry's source: what our client names when /v1/models is empty
PROMPT = "def fibonacci(n):\n    "
FIM = "<fim_prefix>def add(a, b):\n    <fim_suffix>\n    return c\n<fim_middle>"
# 511 tokens: one short of nano's 512-position window. Where a test needs the model to end (or not
# to), it says so with a request field each engine reads, so no retraining changes what it checks:
# transformers' generation_config, OpenAI's logit_bias for llama.cpp. (nano-starcoder v5 ended here by
# itself: its training rows closed most samples with <|endoftext|> in their last 16 positions.)
ENDS = "x = 1\n" * 102 + "x"
REPEATS = "x = 1\n" * 20  # a pattern any model goes on with, greedy, until something stops it
TRANSFORMERS_NO_EOS = {"generation_config": json.dumps({"min_new_tokens": 4})}
# Every token but <|endoftext|> (id 0) suppressed: the greedy next token is the end of text.
TRANSFORMERS_ONLY_EOS = {"generation_config": json.dumps({"suppress_tokens": list(range(1, 4096))})}
LLAMA_ONLY_EOS = {"logit_bias": {"0": 100}}
# Our OpenAI client's request for nano's defaults, standard fields first, then its extra_body.
STANDARD = {
    "max_tokens": 16,
    "temperature": 0.2,
    "top_p": 0.9,
    "seed": 7,
    "stop": ["\n\n"],
    "stream_options": {"include_usage": True},
}
EXTRA = {"top_k": 40, "repetition_penalty": 1.1}


@pytest.fixture(scope="module")
def transformers_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    reason = engine_available("transformers")
    if reason:
        pytest.skip(reason)
    engine = start_transformers_serve(NANO_REL, cwd=REPO, log_dir=tmp_path_factory.mktemp("ts-logs"))
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def llama_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    reason = engine_available("llama.cpp")
    if reason:
        pytest.skip(reason)
    try:
        gguf = convert_to_gguf(REPO / NANO_REL)
    except EngineError as exc:  # the converter comes from the sdist: no PyPI, no converter
        pytest.skip(f"no GGUF of nano-starcoder: {exc}")
    engine = start_llama_cpp_server(
        gguf, n_ctx=512, model_alias="nano-starcoder", log_dir=tmp_path_factory.mktemp("lc")
    )
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def greedy_reference() -> dict[str, str]:
    """transformers ``generate(do_sample=False)`` for 32 tokens, in this process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(REPO / NANO_REL)
    model = AutoModelForCausalLM.from_pretrained(REPO / NANO_REL)
    out = {}
    for prompt in (PROMPT, FIM, REPEATS):
        ids = tokenizer(prompt, return_tensors="pt")
        generated = model.generate(**ids, max_new_tokens=32, do_sample=False)
        out[prompt] = tokenizer.decode(generated[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def complete(engine: RunningEngine, **body: Any) -> httpx.Response:
    body = {"model": engine.model, **body}
    return httpx.post(f"{engine.api_base}/completions", json=body, timeout=60, headers={"Connection": "close"})


def stream_lines(engine: RunningEngine, **body: Any) -> list[str]:
    body = {"model": engine.model, "stream": True, **body}
    with httpx.stream("POST", f"{engine.api_base}/completions", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def chunks_of(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line != "[DONE]"]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(choice.get("text") or "" for chunk in chunks for choice in chunk.get("choices", []))


# -- transformers serve ------------------------------------------------------------------------


def test_transformers_streams_a_standard_request_with_usage_and_no_done(transformers_engine: RunningEngine) -> None:
    lines = stream_lines(transformers_engine, prompt=PROMPT, **STANDARD)
    chunks = chunks_of(lines)
    assert lines[-1] != "[DONE]"  # no [DONE]: the stream just ends after the usage chunk
    last = chunks[-1]
    assert last["choices"][0] == {"finish_reason": "length", "index": 0, "text": ""}
    assert last["usage"] == {"completion_tokens": 16, "prompt_tokens": 10, "total_tokens": 26}
    assert last["model"] == "models/nano-starcoder@main"  # the pinned name plus "@main"
    assert all("finish_reason" not in chunk["choices"][0] for chunk in chunks[:-1])


@pytest.mark.parametrize("field", ["top_k", "repetition_penalty", "repeat_penalty", "min_p"])
def test_transformers_refuses_fields_outside_the_openai_schema(transformers_engine: RunningEngine, field: str) -> None:
    response = complete(transformers_engine, prompt=PROMPT, max_tokens=4, **{field: 40})
    assert response.status_code == 422
    assert response.json() == {"detail": f"Unexpected fields in the request: {{'{field}'}}"}


def test_transformers_lists_no_models_and_refuses_any_other_name(transformers_engine: RunningEngine) -> None:
    assert httpx.get(f"{transformers_engine.api_base}/models").json() == {"object": "list", "data": []}
    response = complete(transformers_engine, prompt=PROMPT, max_tokens=4, model="nano-starcoder")
    assert response.status_code == 400
    assert response.json() == {"detail": "Server is pinned to 'models/nano-starcoder'; requested 'nano-starcoder'."}
    assert httpx.post(f"{transformers_engine.base_url}/tokenize", json={"text": "x"}).status_code == 404


def test_transformers_finish_reasons(transformers_engine: RunningEngine) -> None:
    free = complete(transformers_engine, prompt=PROMPT, max_tokens=40, temperature=0).json()["choices"][0]["text"]
    stop = free[len(free) // 2 :][:4]  # a piece of nano's own greedy text, so no retraining breaks the test
    stopped = complete(transformers_engine, prompt=PROMPT, max_tokens=40, temperature=0, stop=[stop]).json()
    assert stopped["choices"][0]["finish_reason"] == "stop"
    # The stop string is KEPT, with the rest of the token that completed it: stops are checked per token.
    text = stopped["choices"][0]["text"]
    assert free.startswith(text) and text.startswith(free[: free.index(stop) + len(stop)])
    assert "stop_reason" not in stopped["choices"][0]
    eos = complete(transformers_engine, prompt=ENDS, max_tokens=10, temperature=0, **TRANSFORMERS_ONLY_EOS).json()
    assert eos["choices"][0] == {"finish_reason": "stop", "index": 0, "text": ""}  # eos: also "stop"
    assert eos["usage"]["completion_tokens"] == 1  # the end-of-text token is counted


def test_transformers_runs_off_the_position_table_past_512(transformers_engine: RunningEngine) -> None:
    request = {"prompt": ENDS, "max_tokens": 4, "temperature": 0} | TRANSFORMERS_NO_EOS
    # 511 tokens: the second new token needs position 512.
    response = complete(transformers_engine, **request)
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    lines = stream_lines(transformers_engine, **request)
    assert json.loads(lines[-1]) == {"error": "index out of range in self"}  # after a 200 and some text


def test_transformers_ignores_temperature_and_seed_without_do_sample(transformers_engine: RunningEngine) -> None:
    texts = {complete(transformers_engine, prompt=PROMPT, max_tokens=12, temperature=1.0, seed=s).text for s in (1, 2)}
    greedy = complete(transformers_engine, prompt=PROMPT, max_tokens=12, temperature=0).json()["choices"][0]["text"]
    assert {json.loads(t)["choices"][0]["text"] for t in texts} == {greedy}
    sampled = [
        complete(
            transformers_engine,
            prompt=PROMPT,
            max_tokens=12,
            seed=seed,
            generation_config=json.dumps({"do_sample": True}),
        ).json()["choices"][0]["text"]
        for seed in (1, 1, 2)
    ]
    assert sampled[0] == sampled[1] != sampled[2]


def test_transformers_greedy_equals_generate(
    transformers_engine: RunningEngine, greedy_reference: dict[str, str]
) -> None:
    for prompt, expected in greedy_reference.items():
        response = complete(transformers_engine, prompt=prompt, max_tokens=32, temperature=0)
        assert response.json()["choices"][0]["text"] == expected


# -- llama.cpp (llama-cpp-python's server) -------------------------------------------------------


def test_llama_accepts_our_full_request_and_ends_with_an_empty_chunk_and_done(llama_engine: RunningEngine) -> None:
    lines = stream_lines(llama_engine, prompt=PROMPT, **STANDARD, **EXTRA)  # unknown fields are ignored
    chunks = chunks_of(lines)
    assert lines[-1] == "[DONE]"
    last = chunks[-1]["choices"][0]
    # 16 tokens or the "\n\n" stop, whichever the model's text reaches first; the stop is cut out.
    assert last == {"text": "", "index": 0, "logprobs": None, "finish_reason": last["finish_reason"]}
    assert last["finish_reason"] in ("stop", "length")
    assert "\n\n" not in "".join(c["choices"][0]["text"] for c in chunks)
    assert all("usage" not in chunk for chunk in chunks)  # stream_options.include_usage is ignored
    assert chunks[-1]["model"] == "nano-starcoder"


def test_llama_models_listing_and_any_model_name(llama_engine: RunningEngine) -> None:
    listing = httpx.get(f"{llama_engine.api_base}/models").json()
    assert listing == {
        "object": "list",
        "data": [{"id": "nano-starcoder", "object": "model", "owned_by": "me", "permissions": []}],
    }
    response = complete(llama_engine, prompt=PROMPT, max_tokens=2, model="anything/else")
    assert response.status_code == 200 and response.json()["model"] == "anything/else"


def test_llama_finish_reasons_and_context_limit(llama_engine: RunningEngine) -> None:
    greedy = {"prompt": PROMPT, "max_tokens": 40, "temperature": 0, "repeat_penalty": 1.0}
    free = complete(llama_engine, **greedy).json()["choices"][0]["text"]
    stop = free[len(free) // 2 :][:4]  # a piece of nano's own greedy text, so no retraining breaks the test
    choice = complete(llama_engine, **greedy, stop=[stop]).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and "stop_reason" not in choice
    assert choice["text"] == free[: free.index(stop)]  # the stop string is cut out
    eos = complete(llama_engine, prompt=ENDS, max_tokens=10, temperature=0, **LLAMA_ONLY_EOS).json()
    assert eos["choices"][0]["finish_reason"] == "stop" and eos["usage"]["completion_tokens"] == 0
    squeezed = complete(llama_engine, prompt=ENDS, max_tokens=4, temperature=0, logit_bias={"0": -100}).json()
    assert squeezed["choices"][0]["finish_reason"] == "length" and squeezed["usage"]["total_tokens"] == 512
    too_long = complete(llama_engine, prompt="x = 1\n" * 120, max_tokens=5)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"


def test_llama_seed_reproduces_and_tokenize_matches_hf(llama_engine: RunningEngine) -> None:
    texts = [complete(llama_engine, prompt=PROMPT, max_tokens=16, temperature=1.0, seed=s).json() for s in (1, 1, 2)]
    assert texts[0]["choices"][0]["text"] == texts[1]["choices"][0]["text"] != texts[2]["choices"][0]["text"]
    tokens = httpx.post(f"{llama_engine.base_url}/extras/tokenize", json={"input": FIM}).json()["tokens"]
    from transformers import AutoTokenizer

    assert tokens == AutoTokenizer.from_pretrained(REPO / NANO_REL)(FIM)["input_ids"]


def test_llama_greedy_equals_generate_only_without_its_default_repeat_penalty(
    llama_engine: RunningEngine, greedy_reference: dict[str, str]
) -> None:
    for prompt, expected in greedy_reference.items():
        plain = complete(llama_engine, prompt=prompt, max_tokens=32, temperature=0, repeat_penalty=1.0)
        assert plain.json()["choices"][0]["text"] == expected
    # repeat_penalty 1.1 by default: it changes the greedy text wherever the model repeats itself, which
    # greedy decoding of a model this small does on one prompt or another
    defaults = {prompt: complete(llama_engine, prompt=prompt, max_tokens=32, temperature=0).json()["choices"][0]["text"]
                for prompt in greedy_reference}
    assert any(defaults[prompt] != expected for prompt, expected in greedy_reference.items()), defaults


def test_llama_killed_and_restarted_on_the_same_port(llama_engine: RunningEngine) -> None:
    port = llama_engine.port
    llama_engine.kill()
    with pytest.raises(httpx.ConnectError):
        complete(llama_engine, prompt=PROMPT, max_tokens=2)
    llama_engine.restart()
    assert llama_engine.port == port
    assert complete(llama_engine, prompt=PROMPT, max_tokens=2).status_code == 200
