"""The editor routes on the real app (nano-starcoder over HTTP), called by real clients and editors' bodies.

One hole, greedy: every dialect (OpenAI completions with a suffix and with a
templated prompt, Mistral's FIM completions, TGI's generate and
generate_stream, llama.cpp's infill), streamed and not, must give the middle
that the REST fill gives byte for byte, and each answer names its generation,
which can then be shared.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from huggingface_hub import InferenceClient
from openai import OpenAI

from playground.config_types import RateLimits
from tests.web.editor_requests import (
    CONTINUE_FIM,
    CONTINUE_OPENAI,
    HOLE_PREFIX,
    HOLE_SUFFIX,
    LLAMA_VIM,
    LLAMA_VIM_WARM,
    LLM_LS_OPENAI,
    LLM_LS_TGI,
    STARCODER_PSM,
)

pytestmark = pytest.mark.timeout(120)
TOKENS = 24


def ui_fill(url: str) -> str:
    """The fill as the UI's service path makes it: the REST fill of the same hole, greedy."""
    body = {"mode": "fill", "code": HOLE_PREFIX + "<FILL_HERE>" + HOLE_SUFFIX,
            "params": {"max_new_tokens": TOKENS, "temperature": 0}}
    record = httpx.post(url + "/api/generate", json=body, timeout=60).json()
    assert record["middle"].strip(), record  # a middle worth comparing
    return str(record["middle"])


@pytest.fixture(scope="module")
def ui_middle(nano_server) -> str:
    return ui_fill(nano_server.url)


def events(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.read()
    return [json.loads(line[6:]) if line[6:] != "[DONE]" else "[DONE]"
            for line in response.iter_lines() if line.startswith("data: ")]


def post(url: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=60, **kwargs)


def stream(url: str, body: dict[str, Any]) -> list[Any]:
    with httpx.stream("POST", url, json=body, timeout=60) as response:
        return events(response)


def openai_client(nano_server) -> OpenAI:
    return OpenAI(base_url=nano_server.url + "/v1", api_key="unused", max_retries=0)


def test_openai_client_with_a_suffix_gives_the_ui_fill(nano_server, ui_middle):
    client = openai_client(nano_server)
    whole = client.completions.create(model="nano-starcoder", prompt=HOLE_PREFIX, suffix=HOLE_SUFFIX,
                                      max_tokens=TOKENS, temperature=0)
    assert whole.choices[0].text == ui_middle
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    parts = client.completions.create(model="nano-starcoder", prompt=HOLE_PREFIX, suffix=HOLE_SUFFIX,
                                      max_tokens=TOKENS, temperature=0, stream=True)
    assert "".join(chunk.choices[0].text for chunk in parts) == ui_middle


def dialect_middles(url: str) -> dict[str, str]:
    """The same hole through every dialect, greedy, each in the body its editor sends: the middles."""
    greedy_openai = {"max_tokens": TOKENS, "temperature": 0}
    tgi = {**LLM_LS_TGI, "parameters": {"max_new_tokens": TOKENS, "do_sample": False, "return_full_text": False}}
    infill = {**LLAMA_VIM, "n_predict": TOKENS, "temperature": 0}
    continued = stream(url + "/v1/completions", {**CONTINUE_OPENAI, **greedy_openai})
    fim = stream(url + "/v1/fim/completions", {**CONTINUE_FIM, **greedy_openai})
    tokens = stream(url + "/generate_stream", tgi)
    streamed_infill = stream(url + "/infill", {**infill, "stream": True})
    assert continued[-1] == "[DONE]" and fim[-1] == "[DONE]" and streamed_infill[-1]["stop"] is True
    assert fim[-2]["choices"][0]["finish_reason"] in ("stop", "length") and tokens[-1]["details"]["finish_reason"]
    llm_ls = {**LLM_LS_OPENAI, "parameters": {"max_new_tokens": TOKENS}, "temperature": 0}
    return {
        "llm-ls /v1/completions": post(url + "/v1/completions", llm_ls).json()["choices"][0]["text"],
        "continue /v1/completions": "".join(e["choices"][0]["text"] for e in continued[:-1]),
        "continue /v1/fim/completions": "".join(e["choices"][0]["delta"]["content"] for e in fim[:-1]),
        "llm-ls /generate": post(url + "/generate", tgi).json()["generated_text"],
        "/generate_stream tokens": "".join(e["token"]["text"] for e in tokens),
        "/generate_stream generated_text": tokens[-1]["generated_text"],
        "llama.vim /infill": post(url + "/infill", infill).json()["content"],
        "llama.vim /infill streamed": "".join(e["content"] for e in streamed_infill),
    }


def test_every_editor_body_gives_the_ui_fill(nano_server, ui_middle):
    middles = dialect_middles(nano_server.url)
    assert middles == dict.fromkeys(middles, ui_middle)


@pytest.fixture
def online(monkeypatch):
    """The session is offline for the Hub's sake; a user calling their own server is not."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_inference_client_against_generate_streamed_and_not(nano_server, ui_middle, online):
    client = InferenceClient(base_url=nano_server.url + "/generate")
    text = client.text_generation(STARCODER_PSM, max_new_tokens=TOKENS, do_sample=False)
    assert text == ui_middle
    parts = list(client.text_generation(STARCODER_PSM, max_new_tokens=TOKENS, do_sample=False, stream=True))
    assert "".join(parts) == ui_middle
    details = client.text_generation(STARCODER_PSM, max_new_tokens=TOKENS, do_sample=False, details=True)
    assert details.generated_text == ui_middle and details.details.generated_tokens > 0


def test_every_answer_names_a_generation_that_can_be_shared(nano_server, ui_middle):
    answer = post(nano_server.url + "/v1/completions", {"prompt": HOLE_PREFIX, "suffix": HOLE_SUFFIX,
                                                         "max_tokens": TOKENS, "temperature": 0}).json()
    extra = answer["playground"]
    assert answer["id"] == "cmpl-" + extra["generation_id"] and extra["mode"] == "fill"
    assert extra["attribution"] is None  # this test server runs without the attribution check
    record = httpx.get(nano_server.url + extra["record"]).json()
    assert record["middle"] == ui_middle and record["inputs"]["prefix"] == HOLE_PREFIX
    assert [part["part"] for part in record["budget"]] == ["prefix", "suffix", "reply"]
    share = post(nano_server.url + extra["share"]["url"], extra["share"]["body"]).json()
    shared = httpx.get(f"{nano_server.url}/api/shares/{share['id']}").json()
    assert shared["middle"] == ui_middle


def test_a_plain_prompt_completes_and_models_are_listed(nano_server):
    answer = post(nano_server.url + "/v1/completions", {"prompt": "def add(a, b):\n", "max_tokens": 8,
                                                         "temperature": 0}).json()
    assert answer["playground"]["mode"] == "complete" and answer["object"] == "text_completion"
    models = openai_client(nano_server).models.list()
    assert [m.id for m in models.data] == ["nano-starcoder"]


def test_logprobs_and_several_candidates_in_openai_shape(nano_server):
    body = {"prompt": HOLE_PREFIX, "suffix": HOLE_SUFFIX, "max_tokens": 8, "temperature": 0, "logprobs": 2}
    choice = post(nano_server.url + "/v1/completions", body).json()["choices"][0]
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == choice["text"] and len(logprobs["token_logprobs"]) == len(logprobs["tokens"])
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])
    several = post(nano_server.url + "/v1/completions", {**body, "n": 3, "temperature": 0.8, "seed": 3,
                                                          "logprobs": None}).json()
    assert [c["index"] for c in several["choices"]] == [0, 1, 2]


def test_the_cache_warming_call_generates_nothing(nano_server):
    before = httpx.get(nano_server.url + "/metrics").text
    answer = post(nano_server.url + "/infill", LLAMA_VIM_WARM).json()
    assert answer["content"] == "" and answer["tokens_predicted"] == 0
    assert httpx.get(nano_server.url + "/metrics").text.count("generations_total") == before.count(
        "generations_total")


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/v1/completions", {"prompt": "<fim_prefix>a<fim_middle>b<fim_suffix>"}, 422, "out of order"),
    ("/v1/completions", {"prompt": ["a", "b"]}, 422, "one string"),
    ("/v1/completions", {"prompt": "x", "echo": True}, 422, "echo"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 99999}, 422, "max_new_tokens"),
    ("/infill", {"input_prefix": 3}, 422, "must be strings"),
    ("/infill", {"input_prefix": "a", "input_extra": "nope"}, 422, "input_extra"),
])
def test_bad_editor_bodies_get_specific_errors(nano_server, path, body, status, needle):
    response = post(nano_server.url + path, body)
    assert response.status_code == status and needle in response.json()["error"]["message"]


def test_tgi_errors_leave_in_tgis_shape(nano_server, online):
    response = post(nano_server.url + "/generate", {"inputs": 5})
    assert response.status_code == 422
    assert response.json() == {"error": "inputs must be a string: the prompt, with FIM sentinels for a fill.",
                               "error_type": "invalid_parameter"}
    with pytest.raises(Exception, match="a fill prompt has one each"):
        InferenceClient(base_url=nano_server.url + "/generate").text_generation("<fim_prefix>a<fim_prefix>b")


# -- access --------------------------------------------------------------------------------------

KEY = "k3y-for-the-editor-routes-0123456789"


def test_with_api_keys_the_editor_routes_need_one_and_nothing_else_does(fake_server, caplog):
    server, playground = fake_server(api_keys=(KEY,))
    body = {"prompt": "def f(", "max_tokens": 4}
    missing = post(server.url + "/v1/completions", body)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]["message"]
    wrong = post(server.url + "/infill", {"input_prefix": "a"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "not known" in wrong.json()["error"]["message"]
    assert post(server.url + "/generate", {"inputs": "a"}).json()["error_type"] == "invalid_api_key"
    ok = post(server.url + "/v1/completions", body, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert post(server.url + "/v1/completions", body, headers={"X-API-Key": KEY}).status_code == 200
    assert post(server.url + "/api/generate", {"mode": "complete", "prompt": "x"}).status_code == 200  # no key
    assert httpx.get(server.url + "/").status_code == 200
    record = httpx.get(server.url + ok.json()["playground"]["record"]).json()
    assert KEY not in json.dumps(record) and KEY not in caplog.text


def test_each_key_has_its_own_limit(fake_server):
    other = "another-key-for-the-editor-routes-42"
    server, _ = fake_server(api_keys=(KEY, other), limits=RateLimits(per_key_per_minute=2))
    body = {"prompt": "x", "max_tokens": 2}

    def call(key: str) -> int:
        return post(server.url + "/v1/completions", body, headers={"Authorization": f"Bearer {key}"}).status_code

    assert [call(KEY), call(KEY), call(KEY)] == [200, 200, 429]
    assert call(other) == 200  # a key's limit is its own


def test_without_keys_the_editor_routes_count_per_address(fake_server):
    server, _ = fake_server(limits=RateLimits(generate_per_minute=1))
    assert post(server.url + "/v1/completions", {"prompt": "x", "max_tokens": 2}).status_code == 200
    limited = post(server.url + "/infill", {"input_prefix": "x", "n_predict": 2})
    assert limited.status_code == 429 and "from your address" in limited.json()["error"]["message"]
