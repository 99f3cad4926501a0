"""Attribution in the app: every generation checked against the default index (nano-starcoder's
training corpus, built at start), over HTTP, in shares and in a real browser; faults never stop a
generation."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from playground.bootstrap import build_playground
from playground.checks import MAX_CHECK_CHARS, AttributionCheck
from playground.config import Settings
from support.servers import serve
from tests.conftest import fake_playground
from tests.web.browser_support import BROWSER_MARKS, browser  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(240)
# nano-starcoder v3 continues the header that every SQLAlchemy module opens with, 113 characters verbatim.
COPY_PROMPT = "# sql/elements.py\n# Copyright (C) 2005-2026 the SQLAlchemy authors and contributors\n"
GREEDY = {"temperature": 0, "max_new_tokens": 96, "repetition_penalty": 1.0}


def wait_ready(check: AttributionCheck) -> None:
    deadline = time.monotonic() + 60
    while check.state == "indexing" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert check.state == "ready", check.message


@pytest.fixture(scope="module")
def attributed_server(tmp_path_factory):
    playground, _ = build_playground(Settings(data_dir=tmp_path_factory.mktemp("attr")), wait=True)
    assert playground.checks is not None
    server = serve(playground)  # the app starts building the index once it serves
    wait_ready(playground.checks)
    yield server
    server.stop()


def test_a_completion_that_copies_training_code_names_its_source(attributed_server):
    url = attributed_server.url
    record = httpx.post(url + "/api/generate", json={"mode": "complete", "prompt": COPY_PROMPT, "params": GREEDY},
                        timeout=60).json()
    report = record["attribution"]
    assert report["indexes"][0]["documents"] > 600 and report["checked_chars"] == len(record["text"])
    match = report["matches"][0]
    assert record["text"][match["start"]:match["end"]] == match["text"] and len(match["text"]) >= 50
    source = match["source"]
    # Named as the training log names it: a package file with its version and licence (or the stdlib's).
    assert source["path"].endswith(".py") and source["license"]
    assert source["repo"].startswith("pypi:") or source["repo"] == "python/cpython"
    assert 1 <= source["start_line"] <= source["end_line"]
    shared = httpx.post(url + "/api/shares", json={"generation_id": record["id"]}).json()
    assert httpx.get(url + f"/api/shares/{shared['id']}").json()["attribution"] == report
    assert httpx.get(url + "/api/health").json()["attribution"] == "ready"


def test_the_attribution_route_checks_any_text_and_refuses_bad_input(attributed_server):
    url = attributed_server.url + "/api/attribution"
    stdlib = Path(__import__("json").__file__).with_name("decoder.py").read_text()[:600]
    report = httpx.post(url, json={"text": "# mine\n" + stdlib}).json()
    assert report["matches"] and report["matches"][0]["source"]["path"] == "Lib/json/decoder.py"
    assert report["matches"][0]["start"] == len("# mine\n")
    assert httpx.post(url, json={"text": "def my_own_function():\n    return 42\n" * 2}).json()["matches"] == []
    too_big = httpx.post(url, json={"text": "x" * (MAX_CHECK_CHARS + 1)})
    assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "prompt_too_long"
    for bad in ({"text": 5}, {"code": "x"}, {"text": "\ud800"}):
        answer = httpx.post(url, content=__import__("json").dumps(bad), headers={"content-type": "application/json"})
        assert answer.status_code == 422, (bad, answer.text)


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
def test_a_broken_index_never_stops_a_generation(tmp_path, fault):
    index = tmp_path / "mine.sqlite"
    if fault == "corrupt":
        index.write_bytes(b"this is not a database" * 100)
    check = AttributionCheck(tmp_path, (index,), default=False)
    check.start().join(30)
    assert check.state == "unavailable"
    playground = fake_playground(Settings(data_dir=tmp_path))
    playground.checks = check
    server = serve(playground)
    try:
        record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "def f():"}).json()
        assert record["text"] and record["attribution"]["matches"] == []
        assert "mine.sqlite" in record["attribution"]["unavailable"]
        assert httpx.post(server.url + "/api/attribution", json={"text": "x"}).status_code == 503
    finally:
        server.stop()


def test_while_the_index_builds_generations_run_and_say_so(tmp_path):
    playground = fake_playground(Settings(data_dir=tmp_path))
    playground.checks = AttributionCheck(tmp_path)  # not started: still indexing
    run = playground.start("complete", None, {"prompt": "def f():"})
    list(run)
    assert run.record is not None and "still indexing" in run.record.attribution.unavailable


def test_attribution_off_records_null(fake_server):
    server, _ = fake_server()
    record = httpx.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "def f():"}).json()
    assert record["attribution"] is None


def test_the_browser_highlights_the_copied_span_and_shows_its_source(browser, attributed_server):  # noqa: F811
    from tests.web.browser_support import SCREENSHOTS
    from tests.web.test_browser import set_slider

    page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    page.goto(attributed_server.url + "/")
    page.wait_for_selector("#model", timeout=30_000)  # the model picker: on every tab
    for name, value in (("temperature", 0), ("repetition_penalty", 1), ("max_new_tokens", 96)):
        set_slider(page, name, value)
    page.get_by_role("tab", name="Complete").click()
    page.locator("#complete-prompt .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(COPY_PROMPT)
    page.locator("#complete-run").click()
    line = page.locator("#complete-attribution .attr-warn")
    line.wait_for(timeout=60_000)
    assert ".py" in line.inner_text()
    page.locator("#complete-attribution summary").click()
    assert page.locator("#complete-attribution mark").count() >= 1
    source = page.locator("#complete-attribution .attr-source").first.inner_text()
    assert "pypi:" in source or "python/cpython" in source
    page.screenshot(path=str(SCREENSHOTS / "attribution.png"), full_page=True)


for _mark in BROWSER_MARKS:
    test_the_browser_highlights_the_copied_span_and_shows_its_source = _mark(
        test_the_browser_highlights_the_copied_span_and_shows_its_source)
