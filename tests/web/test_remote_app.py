"""The whole app over HTTP on top of the TGI and OpenAI-compatible STAND-INs.

The playground is built the way ``app.py`` builds it (``build_playground`` with
``--backend tgi|openai --endpoint URL``) and served for real; the stand-ins
(``support/standins``) play the engine, with scripted faults. Each test checks
what a REST client sees and, where it matters, what the engine was sent or
how its stream ended. Timeouts are shortened so the fault tests stay fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from playground.backends.remote_healing import start_regex
from playground.bootstrap import build_playground
from playground.config import Settings
from playground.config_types import RemoteTimeouts
from support.servers import LiveServer, serve, sse_events
from support.standins.common import Behaviour, State
from support.standins.fixtures import running_openai, running_tgi, subprocess_tgi, wait_for

pytestmark = pytest.mark.timeout(60)

FIRST_TOKEN_S = 1.5
IDLE_S = 1.0
ZWSP = "\u200b"
OVERLOADED = Behaviour(kind="http", status=429, error_type="overloaded", message="Model is overloaded")


def remote_app(backend: str, endpoint: str, data_dir: Path) -> LiveServer:
    settings = Settings(backend=backend, endpoint=endpoint, model="starcoder", data_dir=data_dir,
                        timeouts=RemoteTimeouts(first_token_s=FIRST_TOKEN_S, idle_s=IDLE_S))
    playground, loader = build_playground(settings)
    assert loader is None  # remote: nothing loads in-process
    return serve(playground)


@dataclass
class Remote:
    url: str  # the playground
    engine: State  # the stand-in's script and record
    engine_url: str


def reset(state: State) -> None:
    state.script(default=Behaviour())
    state.config.rate = 0.0
    state.config.keepalive_s = 15.0
    with state.lock:
        state.requests.clear()
        state.streams.clear()


@contextmanager
def app_before(running_standin: Callable[[], Any], backend: str, path: str, data_dir: Path) -> Iterator[Remote]:
    """The whole app with ``backend`` pointed at a fresh stand-in (``path`` appended to its URL)."""
    with running_standin() as standin:
        server = remote_app(backend, standin.url + path, data_dir)
        try:
            yield Remote(server.url, standin.state, standin.url)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def tgi_app(tmp_path_factory) -> Iterator[Remote]:
    with app_before(running_tgi, "tgi", "", tmp_path_factory.mktemp("tgi-data")) as remote:
        yield remote


@pytest.fixture
def tgi(tgi_app: Remote) -> Remote:
    reset(tgi_app.engine)
    return tgi_app


@pytest.fixture(scope="module")
def openai_app(tmp_path_factory) -> Iterator[Remote]:
    with app_before(running_openai, "openai", "/v1", tmp_path_factory.mktemp("openai-data")) as remote:
        yield remote


@pytest.fixture
def openai(openai_app: Remote) -> Remote:
    reset(openai_app.engine)
    return openai_app


def post(url: str, timeout: float = 30, **body) -> httpx.Response:
    body.setdefault("mode", "complete")
    if body["mode"] == "complete":
        body.setdefault("prompt", "def add(a, b):\n")
    body.setdefault("params", {"max_new_tokens": 16, "temperature": 0})
    return httpx.post(url + "/api/generate", json=body, timeout=timeout)


def generate(url: str, **body) -> dict:
    response = post(url, **body)
    assert response.status_code == 200, response.text
    return response.json()


def stream_all(url: str, **body) -> list[dict]:
    body["stream"] = True
    body.setdefault("mode", "complete")
    body.setdefault("prompt", "def add(a, b):\n")
    body.setdefault("params", {"max_new_tokens": 16, "temperature": 0})
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(response))


def share(url: str, generation_id: str) -> dict:
    created = httpx.post(url + "/api/shares", json={"generation_id": generation_id}, timeout=30)
    assert created.status_code == 201, created.text
    shared = httpx.get(f"{url}/api/shares/{created.json()['id']}", timeout=30)
    assert shared.status_code == 200, shared.text
    return shared.json()


# -- the three modes --------------------------------------------------------------------


def test_health_and_models_describe_the_remote_engine(tgi):
    health = httpx.get(tgi.url + "/api/health").json()
    assert health.pop("attribution") in ("indexing", "ready")  # the default index builds in the background
    assert health == {"status": "ok", "model": "starcoder", "backend": "tgi", "engine": "reachable"}
    [entry] = httpx.get(tgi.url + "/api/models").json()
    assert entry["backend"] == "tgi" and entry["endpoint"] == tgi.engine_url and entry["loaded"] is True
    assert entry["context_length"] == tgi.engine.config.max_total_tokens  # from /info, not the registry's 8192
    assert entry["fim"]["prefix"] == "<fim_prefix>"


def test_complete_streams_from_the_engine(tgi):
    # Token healing: the prompt's last newline is taken back and TGI's grammar makes the output begin with
    # it, as the scripted tokens do; the app shows the text after it.
    tgi.engine.script(Behaviour(tokens=["\n", "    return", " a", " +", " b", "\n"]))
    events = stream_all(tgi.url, prompt="def add(a, b):\n")
    *deltas, done = events
    assert all(set(e) == {"delta"} for e in deltas) and done["done"] is True
    assert "".join(e["delta"] for e in deltas) == done["text"] == "    return a + b\n"
    assert done["finish_reason"] == "eos" and done["usage"]["completion_tokens"] == 7  # 6 tokens + end-of-text
    assert done["backend"]["kind"] == "tgi" and done["backend"]["endpoint"] == tgi.engine_url
    assert any("asked (grammar, regex)" in n for n in done["notices"])
    [request] = tgi.engine.requests
    assert request["path"] == "/" and request["body"]["inputs"] == "def add(a, b):"
    assert request["body"]["parameters"]["grammar"]["type"] == "regex"
    assert request["body"]["parameters"]["do_sample"] is False  # temperature 0: greedy, no sampling knobs
    assert request["body"]["parameters"]["max_new_tokens"] == 16
    assert tgi.engine.streams[-1].outcome == "finished"


def test_fill_sends_a_fim_prompt_with_user_specials_broken(tgi):
    tgi.engine.script(Behaviour(tokens=["\n    return", " a", " +", " b"]))  # the healed break comes first
    code = "def add(a, b):\n    <FILL_HERE>\n\nMARK = '<fim_suffix><|endoftext|>'\n"
    record = generate(tgi.url, mode="fill", code=code, filename="src/add.py")
    sent = tgi.engine.streams[-1].prompt
    # Prefix-suffix-middle: the prefix's trailing break is taken back where the prefix ends, before the suffix.
    assert sent.startswith("<fim_prefix><filename>src/add.py\ndef add(a, b):<fim_suffix>")
    assert sent.endswith("<fim_middle>")
    # The user's spelling arrives as text: broken by a zero-width space, never a second real token.
    assert f"MARK = '<{ZWSP}fim_suffix><{ZWSP}|endoftext|>'" in sent
    assert sent.count("<fim_suffix>") == 1 and sent.count("<fim_prefix>") == 1
    assert record["middle"] == "return a + b"
    assert record["text"] == "def add(a, b):\n    return a + b\n\nMARK = '<fim_suffix><|endoftext|>'\n"
    # The record holds the prompt as built, and says what healing took back from it before it was sent.
    assert record["raw_prompt"].replace("\n    <fim_suffix>", "<fim_suffix>", 1) == sent
    assert any("trailing '\\n    ' was taken back" in n for n in record["notices"])


def test_chat_cuts_the_next_human_turn(tgi):
    # The stop spans tokens: "\n" then "Human:"; neither the reply nor the stream may show it.
    tgi.engine.script(Behaviour(tokens=[" Use", " reversed", "(xs)", ".", "\n", "Human:", " thanks", "!"]))
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How do I reverse a list?"}]
    events = stream_all(tgi.url, mode="chat", messages=messages, params={"max_new_tokens": 32})
    record = events[-1]
    assert record["text"] == "Use reversed(xs)."
    assert "Human" not in "".join(e.get("delta", "") for e in events[:-1])
    assert record["finish_reason"] == "stop" and record["prompt_version"] == "tech_assistant/v1"
    parameters = tgi.engine.requests[-1]["body"]["parameters"]
    assert parameters["stop"][:2] == ["\nHuman:", "\n-----"]
    sent = tgi.engine.streams[-1].prompt
    assert sent.endswith("Human: hi\n\nAssistant: Hello!\n\nHuman: How do I reverse a list?\n\nAssistant:")
    assert len(sent) / 4 <= tgi.engine.config.max_input_tokens  # dialogues were dropped to fit the engine


def test_share_of_a_remote_generation_round_trips(tgi):
    tgi.engine.script(Behaviour(tokens=["return", " 42"]))
    record = generate(tgi.url, mode="fill", code="def answer():\n    <FILL_HERE>\n", params={"max_new_tokens": 8})
    shared = share(tgi.url, record["id"])
    assert shared == record
    assert shared["backend"]["kind"] == "tgi" and shared["raw_prompt"].startswith("<fim_prefix>")
    assert shared["text"] == "def answer():\n    return 42\n"


# -- engine faults ------------------------------------------------------------------------


def test_validation_error_in_the_stream_is_a_4xx_with_the_engines_reason(tgi):
    rejected = Behaviour(kind="validation", message="Input validation error: `top_n_tokens` must be >= 0")
    tgi.engine.script(rejected)
    response = post(tgi.url)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "rejected_by_engine"
    assert "rejected the request" in error["message"] and "`top_n_tokens` must be >= 0" in error["message"]
    tgi.engine.script(rejected)
    [event] = stream_all(tgi.url)  # streaming: one error event, no record
    assert event == {"error": error}
    assert generate(tgi.url)["finish_reason"] == "length"  # and the app keeps serving


def test_overloaded_twice_then_served(tgi):
    tgi.engine.script(OVERLOADED, OVERLOADED, Behaviour(tokens=["ok"]))
    record = generate(tgi.url)
    assert record["text"] == "ok" and record["finish_reason"] == "eos"
    assert len(tgi.engine.requests) == 3


def test_always_overloaded_is_a_503_busy(tgi):
    tgi.engine.script(default=OVERLOADED)
    started = time.monotonic()
    response = post(tgi.url)
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "backend_busy", "message": "The model server is busy (overloaded); try again in a few seconds."}
    assert len(tgi.engine.requests) == 3  # two retries, then the user hears it
    assert time.monotonic() - started < 10


def test_error_mid_stream_keeps_the_partial_text_marked_interrupted(tgi):
    tgi.engine.script(Behaviour(kind="error_event", after_tokens=3,
                                message="Request failed during generation: Server error: CUDA out of memory"))
    response = post(tgi.url)
    assert response.status_code == 200
    record = response.json()
    assert record["text"] == "def add(" and record["finish_reason"] == "error"
    assert "interrupted after 3 tokens" in record["error"] and "CUDA out of memory" in record["error"]
    assert any("interrupted" in notice for notice in record["notices"])
    assert tgi.engine.streams[-1].outcome == "fault:error_event"
    shared = share(tgi.url, record["id"])  # a share records it as incomplete
    assert shared["finish_reason"] == "error" and shared["text"] == "def add("
    assert any("interrupted" in notice for notice in shared["notices"])


def test_error_mid_stream_over_sse_ends_with_an_interrupted_record(tgi):
    tgi.engine.script(Behaviour(kind="drop", after_tokens=2))  # the connection is cut mid-body
    *deltas, done = stream_all(tgi.url)
    assert "".join(e["delta"] for e in deltas) == "def add" == done["text"]
    assert done["done"] is True and done["finish_reason"] == "error"
    assert any("interrupted" in notice for notice in done["notices"])


def test_stall_before_the_first_token_is_a_quick_504(tgi):
    tgi.engine.config.keepalive_s = 0.1  # keep-alive comments flow, tokens do not
    tgi.engine.script(Behaviour(kind="stall", keepalive=True))
    started = time.monotonic()
    response = post(tgi.url)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["type"] == "backend_timeout"
    assert f"{tgi.engine_url} sent no tokens within {FIRST_TOKEN_S:g} s" in error["message"]
    assert FIRST_TOKEN_S - 0.2 < elapsed < FIRST_TOKEN_S + 4
    assert wait_for(lambda: tgi.engine.streams[-1].outcome == "disconnected", 3)  # the engine's slot is freed


def test_stall_after_tokens_keeps_the_partial_text(tgi):
    tgi.engine.script(Behaviour(kind="stall", after_tokens=2))
    started = time.monotonic()
    record = generate(tgi.url)
    assert time.monotonic() - started < IDLE_S + 4
    assert record["text"] == "def add" and record["finish_reason"] == "error"
    assert f"stopped sending tokens for {IDLE_S:g} s" in record["error"]
    assert wait_for(lambda: tgi.engine.streams[-1].outcome == "disconnected", 3)


def test_sse_client_disconnect_closes_the_engine_stream(tgi):
    tgi.engine.config.rate = 50
    tgi.engine.script(Behaviour(kind="endless"))
    body = {"mode": "complete", "prompt": "x = 1\n", "stream": True, "params": {"max_new_tokens": 500}}
    with httpx.stream("POST", tgi.url + "/api/generate", json=body, timeout=30) as response:
        generation_id = response.headers["x-generation-id"]
        assert "delta" in next(sse_events(response))
    assert wait_for(lambda: tgi.engine.streams[-1].outcome == "disconnected", 5)
    assert tgi.engine.active() == 0
    assert wait_for(lambda: httpx.get(f"{tgi.url}/api/generations/{generation_id}").status_code == 200, 5)
    record = httpx.get(f"{tgi.url}/api/generations/{generation_id}").json()
    assert record["finish_reason"] == "cancelled" and record["usage"]["completion_tokens"] < 200


def test_plain_request_abandoned_by_its_client_closes_the_engine_stream(tgi):
    tgi.engine.config.rate = 50
    tgi.engine.script(Behaviour(kind="endless"))
    with pytest.raises(httpx.ReadTimeout):
        post(tgi.url, timeout=1.0, params={"max_new_tokens": 500})
    assert wait_for(lambda: tgi.engine.streams[-1].outcome == "disconnected", 5)
    assert tgi.engine.active() == 0


def test_killed_engine_is_a_503_naming_it_and_the_app_keeps_serving(tmp_path):
    engine = subprocess_tgi().start()
    server = remote_app("tgi", engine.url, tmp_path)
    try:
        assert post(server.url).status_code == 200
        engine.kill()
        for _ in range(2):  # the failing request, then the next one that re-reads /info
            response = post(server.url)
            assert response.status_code == 503
            error = response.json()["error"]
            assert error["type"] == "backend_unavailable"
            assert engine.url in error["message"] and "cannot be reached" in error["message"]
        health = httpx.get(server.url + "/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["engine"] == "unreachable"
        assert httpx.get(server.url + "/api/models", timeout=10).json()[0]["loaded"] is False
        assert httpx.get(server.url + "/", timeout=10).status_code == 200  # the UI still loads
        engine.start()  # back on the same port: the next request is served
        engine.control({"default": {"tokens": ["back"]}})
        assert generate(server.url)["text"] == "back"
    finally:
        server.stop()
        engine.kill()


# -- the OpenAI-compatible engine ------------------------------------------------------------


def test_openai_fill_round_trip_and_share(openai):
    openai.engine.script(Behaviour(tokens=["\n    return", " a", " +", " b"]))  # the healed break comes first
    record = generate(openai.url, mode="fill", code="def add(a, b):\n    <FILL_HERE>\n# <fim_middle>\n")
    [request] = openai.engine.requests
    assert request["path"] == "/v1/completions" and request["body"]["model"] == "bigcode/starcoder"
    prompt = request["body"]["prompt"]
    assert prompt.startswith("<fim_prefix>def add(a, b):<fim_suffix>\n# <" + ZWSP + "fim_middle>\n")
    assert request["body"]["structured_outputs"] == {"regex": start_regex("\n    ")}  # vLLM's healing
    assert prompt.endswith("<fim_middle>") and prompt.count("<fim_middle>") == 1
    assert record["text"] == "def add(a, b):\n    return a + b\n# <fim_middle>\n"
    assert record["backend"]["kind"] == "openai"
    assert share(openai.url, record["id"]) == record


def test_openai_error_mid_stream_is_an_interrupted_record(openai):
    openai.engine.script(Behaviour(kind="error_event", after_tokens=2))
    record = generate(openai.url)
    assert record["text"] == "def add" and record["finish_reason"] == "error"
    assert any("interrupted" in notice for notice in record["notices"])
    openai.engine.script(default=OVERLOADED)
    response = post(openai.url)
    assert response.status_code == 503 and "busy" in response.json()["error"]["message"]


def test_health_follows_the_engine_without_waiting_for_a_request(tmp_path):
    """A background probe re-reads the engine: health says unreachable soon after it dies, and reachable
    again soon after it is back, with no generation in between."""
    import httpx as client

    from playground.bootstrap import build_playground
    from support.standins.fixtures import running_tgi

    with running_tgi() as engine:
        playground, _ = build_playground(Settings(backend="tgi", endpoint=engine.url, model="starcoder",
                                                  data_dir=tmp_path))
        server = serve(playground)
        try:
            assert client.get(server.url + "/api/health").json()["engine"] == "reachable"
            engine.server.stop()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and client.get(server.url + "/api/health").json()["engine"] != "unreachable":
                time.sleep(0.5)
            assert client.get(server.url + "/api/health").json()["engine"] == "unreachable"
        finally:
            server.stop()
