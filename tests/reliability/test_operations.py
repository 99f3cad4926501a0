"""Operations: metrics, the generation log, secrets, file routes, graceful shutdown."""

from __future__ import annotations

import json
import logging
import re
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from playground.backends.fake import FakeBackend
from playground.config import Settings, load_settings
from playground.config_types import ForwardedFor, RateLimits
from playground.web.limits import client_of
from tests.conftest import REPO, fake_playground, serve

SECRETS = ("hf_PLANTEDsecretTOKEN123", "tok_PLANTEDendpointSECRET")


@pytest.fixture
def app(fake_server):
    """The app with planted secrets in its settings, so a leak would show."""
    return lambda backend=None, **settings: fake_server(backend, hf_token=SECRETS[0], endpoint_token=SECRETS[1],
                                                        **settings)


def test_metrics_count_generations_tokens_and_errors(app):
    server, _ = app()
    httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "a b c"})
    httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": ""})
    text = httpx.get(server.url + "/metrics").text
    assert re.search(r'playground_generations_total\{finish_reason="eos",mode="complete",model="fake"\} 1\.0', text)
    assert re.search(r'playground_tokens_total\{kind="completion",model="fake"\} [1-9]', text)
    assert 'playground_errors_total{type="invalid_text"} 1.0' in text
    assert "playground_queue_depth 0.0" in text
    assert "playground_time_to_first_token_seconds_bucket" in text
    assert re.search(r'playground_http_requests_total\{route="api/generate",status="200"\} 1\.0', text)


def test_one_json_log_line_per_generation_without_prompt_text(app, caplog):
    server, _ = app()
    with caplog.at_level(logging.INFO, logger="playground.generations"):
        httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "my private code"})
    lines = [json.loads(r.message) for r in caplog.records if r.name == "playground.generations"]
    assert len(lines) == 1
    assert {"mode", "model", "prompt_tokens", "completion_tokens", "ttft_ms", "tokens_per_s", "finish_reason"} <= set(lines[0])
    assert "my private code" not in caplog.text


def test_prompt_logging_is_opt_in(app, caplog):
    server, _ = app(log_prompts=True)
    with caplog.at_level(logging.INFO, logger="playground.generations"):
        httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "logged on purpose"})
    assert "logged on purpose" in caplog.text


def test_secrets_never_reach_logs_or_responses(app, caplog):
    with caplog.at_level(logging.DEBUG):
        server, playground = app()
        bodies = [
            httpx.get(server.url + path).text for path in ("/api/health", "/api/models", "/metrics", "/", "/config",
                                                           "/gradio_api/info")
        ]
        record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"}).text
        bodies.append(record)
        bad = httpx.post(server.url + "/api/generate", content=b"{").text
        bodies.append(bad)
    everything = "\n".join(bodies) + caplog.text + repr(playground.settings)
    for secret in SECRETS:
        assert secret not in everything


def test_settings_repr_hides_tokens():
    settings = load_settings([], {"HF_TOKEN": SECRETS[0], "PLAYGROUND_ENDPOINT_TOKEN": SECRETS[1]})
    assert settings.hf_token == SECRETS[0]
    assert SECRETS[0] not in repr(settings) and SECRETS[1] not in repr(settings)


def test_file_routes_do_not_serve_the_database_or_traverse(app, tmp_path):
    server, _ = app()
    httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"})
    database = (tmp_path / "playground.db").resolve()
    assert database.exists()
    probes = [
        f"/gradio_api/file={database}", f"/gradio_api/file={database}-wal", f"/file={database}",
        "/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd",
        "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/../../../../etc/passwd",
        "/gradio_api/file=app.py", f"/gradio_api/file={REPO / 'app.py'}", "/assets/..%2f..%2f..%2fetc%2fpasswd",
    ]
    for probe in probes:
        response = httpx.get(server.url + probe)
        assert response.status_code in (400, 403, 404, 405), (probe, response.status_code)
        assert b"SQLite format" not in response.content and b"root:" not in response.content


def test_file_routes_do_not_serve_a_database_under_the_working_directory():
    """The default layout: `python app.py` keeps data/ inside the directory Gradio starts in."""
    data_dir = Path("data-probe") / uuid.uuid4().hex
    server = serve(fake_playground(Settings(data_dir=data_dir)))
    try:
        httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"})
        assert (data_dir / "playground.db").exists()
        for name in ("playground.db", "playground.db-wal", "playground.db-shm"):
            for probe in (f"/gradio_api/file={data_dir / name}", f"/gradio_api/file={(data_dir / name).resolve()}"):
                response = httpx.get(server.url + probe)
                assert response.status_code in (400, 403, 404, 405), (probe, response.status_code)
    finally:
        server.stop()
        shutil.rmtree("data-probe", ignore_errors=True)


def test_unexpected_errors_show_no_stack_trace(app):
    class Exploding(FakeBackend):
        def stream(self, prompt, params, cancel):
            raise RuntimeError("/secret/server/path/model.py line 12")

    server, _ = app(Exploding())
    response = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"})
    assert response.status_code == 500
    assert "Traceback" not in response.text and "/secret/server/path" not in response.text
    assert "failed unexpectedly (RuntimeError)" in response.json()["error"]["message"]
    assert httpx.get(server.url + "/api/health").status_code == 200


def test_generation_rate_limit(app):
    server, _ = app(limits=RateLimits(generate_per_minute=3))
    statuses = [httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"}).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_a_forged_forwarded_for_does_not_escape_the_limit(app):
    server, _ = app(limits=RateLimits(generate_per_minute=2))
    statuses = [httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"},
                           headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code for n in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("setting, header, client", [
    ("ignore", "203.0.113.9", "127.0.0.1"),
    ("ignore", None, "127.0.0.1"),
    ("first", "203.0.113.9, 10.1.1.1", "203.0.113.9"),
    ("first", None, "127.0.0.1"),
    ("1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client forged 6.6.6.6; our proxy appended the rest
    ("2", "6.6.6.6, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
    ("2", "203.0.113.9", "127.0.0.1"),  # fewer entries than proxies: not through them, so the peer
    ("1", ["6.6.6.6", "203.0.113.9"], "203.0.113.9"),  # our proxy added a second header line
    ("first", "not-an-address", "127.0.0.1"),  # made-up strings do not mint new clients
    ("first", "2001:DB8::1", "2001:db8::1"),
])
def test_client_address_for_the_limits(setting, header, client):
    lines = [header] if isinstance(header, str) else header or []
    headers = [(b"x-forwarded-for", line.encode()) for line in lines]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers,
                       "client": ("127.0.0.1", 50000)})
    assert client_of(request, ForwardedFor.parse("--forwarded-for", setting)) == client


def test_graceful_shutdown_cancels_in_flight_generations(app):
    server, playground = app(FakeBackend(outputs=["word " * 500], delay_s=0.02))
    with httpx.stream("POST", server.url + "/api/generate", timeout=30,
                      json={"mode": "complete", "prompt": "x", "stream": True,
                            "params": {"stop_loops": False}}) as response:  # "word word ..." is a loop
        generation_id = response.headers["x-generation-id"]
        next(response.iter_lines())
        playground.shutdown(grace_s=5)
    record = playground.recent.get(generation_id)
    assert record is not None and record.finish_reason == "cancelled"
    assert record.usage.completion_tokens < 500
