"""The red-team run's defects, each as the input that triggered it, plus a bounded fuzz run.

Every malformed request answers 4xx in the documented error shape; nothing slow runs on the event
loop (health keeps answering while a huge fill is prepared, clients hammer the API, or another
process holds the database's write lock); the limits hold on every path; logs open nothing; uploads
are refused; every 404 is ours.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import statistics
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.backends.fake import FakeBackend
from playground.config_types import RateLimits

pytestmark = pytest.mark.timeout(300)
NO_LIMITS = RateLimits(0, 0, 0)


def post_raw(url: str, path: str, text: str) -> httpx.Response:
    return httpx.post(url + path, content=text.encode("utf-8", "surrogatepass"),
                      headers={"content-type": "application/json"}, timeout=60)


def assert_4xx(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    error = response.json()["error"]
    assert set(error) == {"type", "message"} and error["message"]


LITERAL_CASES = [
    '{"mode": "complete", "prompt": "x", "model": {"a": 1}}',
    '{"mode": "complete", "prompt": "x", "model": ["x"]}',
    '{"mode": "complete", "prompt": "x", "params": {"max_new_tokens": "--5"}}',
    '{"mode": "complete", "prompt": "x", "params": {"seed": "\u00b2"}}',
    '{"mode": "complete", "prompt": "x", "params": {"max_new_tokens": ' + "9" * 5000 + "}}",
    '{"mode": "complete", "prompt": "x", "params": {"temperature": ' + "9" * 400 + "}}",
    '{"mode": "complete", "prompt": "x", "params": {"temperature": 1e-300}}',
    '{"mode": "complete", "prompt": "x", "params": {"stop": ["\\ud800"]}}',
    '{"mode": "complete", "prompt": "x", "params": {"\\ud800": 1}}',
    '{"mode": "complete", "prompt": "x", "stream": true, "params": {"stop": ["\\ud800"]}}',
    '{"mode": "complete", "prompt": "x", "stream": true, "params": {"\\ud800": 1}}',
    '{"mode": ' + "[" * 1000 + "]" * 1000 + "}",
    "[" * 100_000,
]


def test_each_malformed_request_is_a_4xx_in_our_shape(fake_server):
    server, playground = fake_server(limits=NO_LIMITS)
    for case in LITERAL_CASES:
        assert_4xx(post_raw(server.url, "/api/generate", case))
    assert_4xx(post_raw(server.url, "/api/shares", '{"generation_id": ' + "[" * 1000 + "]" * 1000 + "}"))
    assert playground.recent.get("x") is None  # nothing was generated from any of them


def test_every_404_is_ours(fake_server):
    server, _ = fake_server(limits=NO_LIMITS)
    for path in ("/api/generations/", "/api/generations/a/b", "/api/shares/", "/api/nothing-here"):
        response = httpx.get(server.url + path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found", path


def test_uploads_are_refused(fake_server):
    server, _ = fake_server(limits=NO_LIMITS)
    response = httpx.post(server.url + "/gradio_api/upload", files={"files": ("a.txt", b"x" * 100_000)})
    assert response.status_code == 403 and response.json()["error"]["type"] == "uploads_off"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
FIELDS = st.sampled_from(["mode", "model", "prompt", "code", "filename", "messages", "history", "message",
                          "system_prompt", "params", "stream"])
# Integers past a float's range: "n": 1000...0 (309+ digits) once gave a 500 (an OverflowError).
HUGE = st.integers(min_value=10**300, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-(10**300))
PARAMS = st.dictionaries(st.sampled_from(["max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty",
                                          "seed", "stop", "n", "logprobs", "heal", "end_at_scope", "no_empty_fill",
                                          "stop_loops", "nope"]),
                         JSON | HUGE, max_size=4)
# Chat messages in Gradio's content-block form, any part of them wrong: a block whose "text" was null once gave
# 99 of 119 fuzz 500s.
BLOCKS = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "x"]) | JSON}, optional={"text": JSON}),
                  max_size=3)
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]) | JSON},
                                          optional={"content": JSON | BLOCKS}), max_size=3)
BODIES = (st.fixed_dictionaries({"mode": st.sampled_from(["complete", "fill", "chat", "x"]) | JSON},
                                optional={"params": PARAMS | JSON})
          | st.fixed_dictionaries({"mode": st.just("chat"), "messages": MESSAGES}, optional={"params": PARAMS})
          | st.dictionaries(FIELDS, JSON, max_size=5) | JSON)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from playground.config import Settings
    from playground.web.server import create_app
    from tests.conftest import fake_playground

    playground = fake_playground(Settings(data_dir=tmp_path_factory.mktemp("fuzz"), limits=NO_LIMITS),
                                 FakeBackend(outputs=[]))
    with TestClient(create_app(playground), raise_server_exceptions=False) as client:
        yield client


# 3,000 cases keep the default suite near its time budget; PLAYGROUND_FUZZ_EXAMPLES=10000 runs the red team's.
FUZZ_EXAMPLES = int(os.environ.get("PLAYGROUND_FUZZ_EXAMPLES", "3000"))


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=BODIES, path=st.sampled_from(["/api/generate", "/api/shares", "/api/attribution"]))
def test_fuzzed_bodies_never_get_a_5xx(fuzz_client, body, path):
    response = fuzz_client.post(path, content=json.dumps(body).encode("utf-8", "surrogatepass"),
                                headers={"content-type": "application/json"})
    assert response.status_code < 500 or response.json()["error"]["type"] == "attribution_unavailable", \
        (body, response.status_code, response.text[:300])


def health_times(url: str, stop: threading.Event) -> list[float]:
    times: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        assert httpx.get(url + "/api/health", timeout=10).status_code == 200
        times.append(time.perf_counter() - started)
        time.sleep(0.02)
    return times


def p95(times: list[float]) -> float:
    """The 95th percentile: a health check held up behind the work is slow in most polls, while one or two
    scheduler hiccups on two shared cores (seen in CI at 0.6 s) are not what these tests are about."""
    value = statistics.quantiles(times, n=100, method="inclusive")[94] if len(times) >= 2 else times[0]
    print(f"health: {len(times)} polls, median {statistics.median(times) * 1000:.0f} ms, p95 {value * 1000:.0f} ms")
    return value


def under_load(url: str, work) -> list[float]:
    stop = threading.Event()
    results: list[list[float]] = []
    poller = threading.Thread(target=lambda: results.append(health_times(url, stop)))
    poller.start()
    try:
        work()
    finally:
        stop.set()
        poller.join()
    return results[0]


def test_health_stays_fast_while_a_huge_fill_is_prepared(nano_server):
    code = "x = 1\n" * 16_000 + "<FILL_HERE>\n" + "y = 2\n" * 17_000  # 200,000 characters
    body = {"mode": "fill", "code": code, "params": {"max_new_tokens": 4, "temperature": 0}}
    times = under_load(nano_server.url, lambda: httpx.post(nano_server.url + "/api/generate", json=body, timeout=120))
    assert p95(times) < 0.25, sorted(times)[-5:]


def test_health_stays_fast_while_three_clients_hammer(fake_server):
    server, _ = fake_server(FakeBackend(outputs=[], delay_s=0.001), limits=NO_LIMITS)
    deadline = time.monotonic() + 5

    def hammer() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                client.post(server.url + "/api/generate", json={"mode": "fill", "code": "a\n" * 2000 + "<FILL_HERE>"})

    def work() -> None:
        clients = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()

    assert p95(under_load(server.url, work)) < 0.25


def test_health_stays_fast_while_another_process_holds_the_write_lock(fake_server):
    server, playground = fake_server(limits=NO_LIMITS)
    record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "a"}).json()
    holder = sqlite3.connect(playground.settings.database.removeprefix("sqlite:///"))
    holder.execute("BEGIN IMMEDIATE")
    try:
        answers: list[int] = []
        work = lambda: answers.append(httpx.post(server.url + "/api/shares",  # noqa: E731
                                                 json={"generation_id": record["id"]}, timeout=30).status_code)
        times = under_load(server.url, work)
    finally:
        holder.rollback()
        holder.close()
    assert answers == [503] and p95(times) < 0.25


def test_one_generation_shared_twice_is_one_share(fake_server):
    server, _ = fake_server(limits=NO_LIMITS)
    record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "a"}).json()
    first = httpx.post(server.url + "/api/shares", json={"generation_id": record["id"]})
    again = httpx.post(server.url + "/api/shares", json={"generation_id": record["id"]})
    assert first.status_code == 201 and "delete_token" in first.json()
    assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "url": first.json()["url"]}


def test_the_ui_share_button_obeys_the_share_limit(tmp_path):
    import gradio as gr
    from starlette.requests import Request

    from playground.config import Settings
    from playground.web.limits import WebLimits
    from playground.web.ui.common import ActiveRuns, SharePanel, UiContext, share_confirm
    from tests.conftest import fake_playground

    playground = fake_playground(Settings(data_dir=tmp_path))
    limits = WebLimits.from_settings(RateLimits(share_create_per_minute=2), playground.settings.forwarded_for)
    with gr.Blocks():
        ctx = UiContext(playground, limits, ActiveRuns(), gr.Dropdown(), None, gr.BrowserState())  # type: ignore[arg-type]
        panel = SharePanel(gr.Button(), gr.Textbox(), gr.Group(), gr.Button(), gr.Markdown(), gr.State(), gr.State())
    run = playground.start("complete", None, {"prompt": "a"})
    list(run)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "client": ("127.0.0.1", 1),
             "query_string": b"", "server": ("127.0.0.1", 80), "scheme": "http"}
    request = gr.Request(request=Request(scope))
    for _ in range(2):
        share_confirm(ctx, panel, run.id, None, request)
    with pytest.raises(gr.Error, match="Too many shares created"):
        share_confirm(ctx, panel, run.id, None, request)


def test_no_string_in_any_log_line_opens_anything(fake_server, caplog):
    caplog.set_level(logging.DEBUG)
    server, _ = fake_server(limits=NO_LIMITS)
    record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "a"}).json()
    share = httpx.post(server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    httpx.get(server.url + f"/api/shares/{share['id']}x")  # a failing lookup is logged too
    words = set(re.findall(r"[A-Za-z0-9_:-]{16,}", "\n".join(r.getMessage() for r in caplog.records)))
    assert words, "the generation was logged"
    assert record["id"] not in words and share["id"] not in words and share["delete_token"] not in words
    for word in words:
        assert httpx.get(server.url + f"/api/generations/{word}").status_code == 404
        assert httpx.get(server.url + f"/api/shares/{word}").status_code == 404


def test_a_stopped_stream_records_what_the_client_was_sent(fake_server):
    server, _ = fake_server(FakeBackend(outputs=["word " * 200], delay_s=0.02), limits=NO_LIMITS)
    received = []
    with httpx.stream("POST", server.url + "/api/generate", timeout=30,
                      json={"mode": "complete", "prompt": "a", "stream": True,
                            "params": {"stop_loops": False}}) as response:  # "word word ..." is a loop
        generation_id = response.headers["x-generation-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line[6:])["delta"])
            if len(received) == 5:
                break
    deadline = time.monotonic() + 10
    while (answer := httpx.get(server.url + f"/api/generations/{generation_id}")).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    record = answer.json()
    assert record["finish_reason"] == "cancelled"
    got = "".join(received)
    assert record["text"].startswith(got) and len(record["text"]) <= len(got) + len("word ") * 2
