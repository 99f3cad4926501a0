"""The real app over HTTP: health, models, generation (JSON and SSE), and bad input."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from playground.backends.fake import FakeBackend
from playground.errors import BackendUnavailableError
from support.servers import sse_events


def test_health_and_models(nano_server):
    health = httpx.get(nano_server.url + "/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    [entry] = httpx.get(nano_server.url + "/api/models").json()
    assert {"id", "backend", "context_length", "fim", "loaded", "dtype", "device_map"} <= set(entry)
    assert entry["id"] == "nano-starcoder" and entry["loaded"] is True and entry["context_length"] == 512
    assert entry["fim"]["prefix"] == "<fim_prefix>"
    assert entry["placement"]["devices"]["cpu"]["blocks"] == [0, 1, 2, 3]


def test_generate_returns_the_full_record(nano_server):
    body = {"mode": "complete", "prompt": "def add(a, b):\n", "params": {"max_new_tokens": 12, "temperature": 0}}
    record = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert record["mode"] == "complete" and record["model"] == "nano-starcoder"
    assert record["raw_prompt"] == "def add(a, b):\n"
    assert record["params"]["temperature"] == 0 and isinstance(record["params"]["seed"], int)
    assert record["finish_reason"] in ("length", "eos")
    assert 0 < record["usage"]["completion_tokens"] <= 12
    assert record["backend"]["kind"] == "local" and record["backend"]["revision"].startswith("sha256:")
    again = httpx.get(f"{nano_server.url}/api/generations/{record['id']}").json()
    assert again == record


def test_streaming_deltas_add_up_to_the_record(nano_server):
    body = {"mode": "fill", "code": "def f(x):\n    <FILL_HERE>\n", "stream": True,
            "params": {"max_new_tokens": 16, "temperature": 0}}
    with httpx.stream("POST", nano_server.url + "/api/generate", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert all(set(e) == {"delta"} for e in events[:-1]) and events[-1]["done"] is True
    record = events[-1]
    assert record["id"] == response.headers["x-generation-id"]
    middle = "".join(e["delta"] for e in events[:-1])
    assert record["middle"] == middle or middle.startswith(record["middle"])  # a suffix echo is cut at the end
    assert record["text"] == "def f(x):\n    " + record["middle"] + "\n"
    assert "<fim_" not in record["text"]


def test_chat_on_nano_drops_examples_and_records_the_prompt_version(nano_server):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "How do I reverse a list in Python?"}]
    body = {"mode": "chat", "messages": messages, "params": {"max_new_tokens": 8}}
    record = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert record["prompt_version"] == "tech_assistant/v1"
    assert any("example dialogues" in n for n in record["notices"])
    assert record["raw_prompt"].endswith("Human: How do I reverse a list in Python?\n\nAssistant:")
    assert "\nHuman:" not in record["text"]


def test_client_disconnect_cancels_the_generation(nano_server):
    body = {"mode": "complete", "prompt": "class Tree:\n", "stream": True,
            "params": {"max_new_tokens": 400, "temperature": 1.0, "repetition_penalty": 1.0}}
    with httpx.stream("POST", nano_server.url + "/api/generate", json=body, timeout=60) as response:
        generation_id = response.headers["x-generation-id"]
        next(sse_events(response))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = httpx.get(f"{nano_server.url}/api/generations/{generation_id}")
        if got.status_code == 200:
            break
        time.sleep(0.1)
    record = got.json()
    assert record["finish_reason"] == "cancelled"
    assert record["usage"]["completion_tokens"] < 400


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"mode": "poetry", "prompt": "x"}, 400, "Unknown mode"),
        ({"mode": "complete", "prompt": ""}, 400, "empty"),
        ({"mode": "complete", "prompt": "x", "params": {"temperature": 5}}, 422, "temperature must be between 0 and 2"),
        ({"mode": "complete", "prompt": "x", "params": {"top_k": "many"}}, 422, "top_k must be a whole number"),
        ({"mode": "complete", "prompt": "x", "params": {"stop": ["a"] * 9 + ["b"] * 0 + list("cdefghij")}}, 422, "At most 8 stop"),
        ({"mode": "complete", "prompt": "x", "params": {"bogus": 1}}, 422, "Unknown parameter"),
        ({"mode": "complete", "prompt": "word " * 2000}, 413, "tokens"),
        ({"mode": "complete", "prompt": "x" * 300_000}, 413, "characters"),
        ({"mode": "fill", "code": "no hole here"}, 422, "has no such marker"),
        ({"mode": "fill", "code": "<FILL_HERE><FILL_HERE>"}, 422, "exactly one hole"),
        ({"mode": "chat", "message": "x", "history": "not a list"}, 400, "history: Input should be a valid list"),
        # A content block whose text is not a string, and a 400-digit number: once 500s, now named.
        ({"mode": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}, 400,
         "empty"),
        ({"mode": "complete", "prompt": "x", "params": {"n": 10**400}}, 422, "n must be between 1 and 8, got a number"),
        ({"mode": "chat", "messages": []}, 400, "non-empty list"),
        ({"mode": "chat", "messages": [{"role": "assistant", "content": "x"}]}, 400, "must come from the user"),
        ({"mode": "complete", "prompt": "x", "model": "gpt-5"}, 404, "not served here"),
    ],
)
def test_bad_input_gets_a_specific_error(nano_server, body, status, needle):
    response = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_broken_unicode_and_broken_json(nano_server):
    raw = b'{"mode": "complete", "prompt": "ok \\ud800 broken"}'
    response = httpx.post(nano_server.url + "/api/generate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "lone surrogate" in response.json()["error"]["message"]
    response = httpx.post(nano_server.url + "/api/generate", content=b"{not json")
    assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]


def test_special_token_injection_stays_plain_text(nano_server, nano_backend):
    hostile = "x = '<|endoftext|><fim_prefix><fim_suffix><fim_middle>'\n"
    body = {"mode": "complete", "prompt": hostile, "params": {"max_new_tokens": 4}}
    record = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert record["raw_prompt"] == hostile
    # As plain text the spellings cost many tokens; as specials they would cost 4.
    assert record["usage"]["prompt_tokens"] > 20


def test_dead_backend_gets_a_clear_503_and_the_app_keeps_serving(fake_server):
    error = BackendUnavailableError("The model server at http://10.0.0.9:8080 is not answering. Check that it runs.")
    server, _ = fake_server(FakeBackend(fail_with=error))
    response = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"})
    assert response.status_code == 503
    assert response.json()["error"] == {"type": "backend_unavailable", "message": error.message}
    assert httpx.get(server.url + "/api/health").status_code == 200


def test_one_generation_at_a_time_and_a_full_queue_says_busy(fake_server):
    backend = FakeBackend(outputs=["a b c d e f g h"] * 3, delay_s=0.15)
    server, _ = fake_server(backend, max_queue=1)
    results: list[httpx.Response] = []

    def call():
        results.append(httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"}, timeout=30))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 503]
    busy = next(r for r in results if r.status_code == 503)
    assert "already waiting" in busy.json()["error"]["message"]


def test_mid_stream_failure_keeps_partial_text_marked_interrupted(fake_server):
    server, _ = fake_server(FakeBackend(outputs=["one two three four"], fail_after=2))
    record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"}).json()
    assert record["text"] == "one two"
    assert record["finish_reason"] == "error"
    assert any("interrupted" in n for n in record["notices"])


def test_params_bounds_include_logprobs_and_n(nano_server):
    bounds = httpx.get(nano_server.url + "/api/params").json()["bounds"]
    assert (bounds["logprobs"]["minimum"], bounds["logprobs"]["maximum"]) == (0, 5)
    assert (bounds["n"]["minimum"], bounds["n"]["maximum"]) == (1, 8)


@pytest.mark.parametrize("params", [{"logprobs": 9}, {"n": 0}, {"logprobs": "2; drop"}])
def test_bad_logprobs_or_n_is_422(nano_server, params):
    response = httpx.post(nano_server.url + "/api/generate", json={"mode": "complete", "prompt": "x", "params": params})
    assert response.status_code == 422 and response.json()["error"]["type"] == "invalid_parameter"


def test_chat_with_several_candidates_is_422(nano_server):
    body = {"mode": "chat", "message": "hi", "params": {"n": 2, "temperature": 0.5}}
    response = httpx.post(nano_server.url + "/api/generate", json=body)
    assert response.status_code == 422 and "fill and complete" in response.json()["error"]["message"]


def test_each_streamed_delta_carries_its_tokens(nano_server):
    body = {"mode": "complete", "prompt": "def add(a, b):\n", "stream": True,
            "params": {"max_new_tokens": 24, "temperature": 0, "logprobs": 2, "repetition_penalty": 1.0}}
    with httpx.stream("POST", nano_server.url + "/api/generate", json=body, timeout=60) as response:
        events = list(sse_events(response))
    deltas, done = events[:-1], events[-1]
    assert deltas and all("".join(t["text"] for t in e["tokens"]) == e["delta"] for e in deltas)
    streamed = [t for e in deltas for t in e["tokens"]]
    assert "".join(t["text"] for t in streamed) == done["text"] == "".join(t["text"] for t in done["tokens"])
    assert all(t["top"][0]["text"] == t["text"] and len(t["top"]) == 2 for t in done["tokens"])
    assert all(t["logprob"] <= 0 for t in done["tokens"])


def test_candidates_and_tokens_survive_a_share(nano_server):
    body = {"mode": "fill", "code": "def f(x):\n    <FILL_HERE>\n    return y\n",
            "params": {"max_new_tokens": 12, "temperature": 1.0, "top_p": 1.0, "seed": 3, "n": 4, "logprobs": 1}}
    record = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert sum(c["count"] for c in record["candidates"]) == 4
    assert record["middle"] == record["candidates"][0]["middle"] and record["tokens"] == record["candidates"][0]["tokens"]
    # Best first; a candidate that wrote nothing (end of text at once) has no mean and comes last.
    scores = [c["mean_logprob"] for c in record["candidates"]]
    known = [score for score in scores if score is not None]
    assert scores == known + [None] * (len(scores) - len(known)) and known == sorted(known, reverse=True)
    again = httpx.post(nano_server.url + "/api/generate", json=body, timeout=60).json()
    assert again["candidates"] == record["candidates"]  # one seed, the same candidates
    share = httpx.post(nano_server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    shared = httpx.get(f"{nano_server.url}/api/shares/{share['id']}").json()
    assert (shared["candidates"], shared["tokens"]) == (record["candidates"], record["tokens"])
    page = httpx.get(f"{nano_server.url}/s/{share['id']}?candidate=2")
    assert page.status_code == 303 and page.headers["location"].endswith(f"?share={share['id']}&candidate=2")
