"""The UI in chromium over faulty engines: an interrupted remote generation, and hostile model output.

Playwright drives Debian's chromium against the real app served on top of
the TGI STAND-IN (scripted to fail mid-stream) and of the FakeBackend
(scripted to answer with hostile HTML).
"""

from __future__ import annotations

import re

import pytest

from playground.backends.fake import FakeBackend
from playground.bootstrap import build_playground
from playground.config import Settings
from playground.config_types import RemoteTimeouts
from support.standins.common import Behaviour, StandinConfig
from support.standins.fixtures import running_tgi
from tests.conftest import fake_playground, serve

pytest.importorskip("playwright.sync_api")

from playground.web.ui.parts import COMPLETE_EXAMPLE  # noqa: E402
from tests.web.browser_support import BROWSER_MARKS, SCREENSHOTS, browser  # noqa: E402,F401 - fixture
from tests.web.test_browser import result_text  # noqa: E402

pytestmark = [*BROWSER_MARKS, pytest.mark.timeout(240)]


@pytest.fixture
def open_page(browser):
    contexts = []

    def open_(url: str):
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        contexts.append(context)
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#chat-send", timeout=60_000)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.mark.slow
def test_interrupted_remote_generation_keeps_its_partial_output(open_page, tmp_path):
    tokens = [" dirpath", ",", " _", ",", " names", " in", " os", ".walk(root):\n", "        pass"]
    with running_tgi(StandinConfig(rate=20)) as engine:
        engine.state.script(Behaviour(kind="error_event", after_tokens=8, tokens=tokens,
                                      message="Request failed during generation: Server error: CUDA out of memory"))
        settings = Settings(backend="tgi", endpoint=engine.url, model="starcoder", data_dir=tmp_path,
                            timeouts=RemoteTimeouts(first_token_s=20, idle_s=20))
        playground, _ = build_playground(settings)
        server = serve(playground)
        try:
            page = open_page(server.url)
            page.get_by_role("tab", name="Complete").click()
            page.locator("#complete-run").click()
            stats = page.locator("#complete-stats")
            stats.get_by_text(re.compile("finish: ")).wait_for(timeout=90_000)
            page.screenshot(path=str(SCREENSHOTS / "remote-interrupted.png"), full_page=True)
            text = stats.inner_text()
            assert "finish: error" in text
            assert "The generation was interrupted; the output is incomplete." in text
            assert "interrupted after 8 tokens" in text and "CUDA out of memory" in text
            result = result_text(page, "complete")
            assert result == COMPLETE_EXAMPLE + " dirpath, _, names in os.walk(root):\n"
            assert engine.state.streams[-1].outcome == "fault:error_event"
        finally:
            server.stop()


@pytest.mark.slow
def test_hostile_html_from_the_model_never_runs_in_the_chat_view(open_page, tmp_path):
    hostile = ('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
               '<a href="javascript:window.__pwned=3">click</a> The answer is 4.')
    backend = FakeBackend(outputs=[hostile] * 3)
    server = serve(fake_playground(Settings(data_dir=tmp_path), backend))
    try:
        page = open_page(server.url)
        page.locator("#chat-message textarea").fill("What is 2+2?")
        page.locator("#chat-send").click()
        page.locator("#chat-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=90_000)
        chatbot = page.locator("#chatbot")
        chatbot.get_by_text("The answer is 4.").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # give any onerror / injected handler time to fire
        # Shown as the text the model wrote, tags and all: nothing of it became markup.
        assert '<a href="javascript:window.__pwned=3">click</a>' in chatbot.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "chat-hostile-output.png"), full_page=True)
        assert page.evaluate("window.__pwned") is None
        assert chatbot.locator("script").count() == 0
        assert chatbot.locator("[onerror]").count() == 0
        assert chatbot.locator("a[href^='javascript:'], #chatbot img[src='x']").count() == 0
        assert backend.requests and "What is 2+2?" in backend.requests[-1].prompt.render()
    finally:
        server.stop()
