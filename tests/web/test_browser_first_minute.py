"""What a newcomer meets first, in chromium: chat that keeps code, candidates that agree with the page,
a shared view that is only a view, and a page that is readable and usable at phone width.

Chat and the shared view run on the FakeBackend (its reply is the exact text under test); candidates run
on the shipped nano-starcoder.
"""

from __future__ import annotations

import re

import httpx
import pytest

from playground.backends.fake import FakeBackend
from playground.config import Settings
from tests.conftest import fake_playground, serve

pytest.importorskip("playwright.sync_api")

from tests.web.browser_support import BROWSER_MARKS, SCREENSHOTS, browser  # noqa: E402,F401 - fixture
from tests.web.test_browser import code_text, open_tab, result_text, set_slider  # noqa: E402

pytestmark = [*BROWSER_MARKS, pytest.mark.timeout(240)]

CODE_REPLY = ("Here is a cache:\n\nfrom __future__ import annotations\n\n# keep the newest\nclass Cache:\n"
              "    def __init__(self, size):\n        self.size = size\n\nIt keeps __init__ simple.\n\n"
              "```python\nprint(Cache(2).size)\n```\n")


@pytest.fixture
def fake_app(tmp_path):
    backend = FakeBackend(outputs=[CODE_REPLY] * 20)
    server = serve(fake_playground(Settings(data_dir=tmp_path), backend))
    yield server, backend
    server.stop()


def new_page(browser, url: str, width: int = 1280):
    context = browser.new_context(viewport={"width": width, "height": 1400})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#model", timeout=60_000)
    return context, page


def test_chat_sends_on_enter_and_shows_code_as_written(browser, fake_app):
    server, backend = fake_app
    context, page = new_page(browser, server.url + "/")
    try:
        box = page.locator("#chat-message textarea")
        box.click()
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")  # a new line, not a send
        page.keyboard.type("second line")
        assert box.input_value() == "first line\nsecond line" and not backend.requests
        page.keyboard.press("Enter")
        page.locator("#chat-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=60_000)
        assert "first line\nsecond line" in backend.requests[-1].prompt.render()
        chatbot = page.locator("#chatbot")
        # The stats can paint a moment before the last of the reply does (one loaded run read it first).
        chatbot.get_by_text("It keeps __init__ simple.").wait_for(timeout=10_000)
        text = chatbot.inner_text()
        assert "from __future__ import annotations" in text and "It keeps __init__ simple." in text
        assert "    def __init__(self, size):\n        self.size = size" in text  # indentation kept
        assert "# keep the newest" in text  # a comment, not a heading
        assert chatbot.locator("strong, em, h1, h2, h3").count() == 0
        assert chatbot.locator("pre").count() >= 3  # two unfenced code paragraphs and the model's own block
        assert chatbot.locator(".copy_code_button, button[title*='opy']").count() >= 1
        page.screenshot(path=str(SCREENSHOTS / "chat-code.png"), full_page=True)
    finally:
        context.close()


def test_a_shared_chat_is_only_a_view_and_an_unknown_link_is_a_page(browser, fake_app):
    server, _ = fake_app
    generated = httpx.post(server.url + "/api/generate", json={"mode": "chat", "message": "A cache?"}, timeout=60)
    shared = httpx.post(server.url + "/api/shares", json={"generation_id": generated.json()["id"]}).json()
    context, page = new_page(browser, server.url + f"/?share={shared['id']}")
    try:
        page.locator("#chat-shared-banner").get_by_text("Shared generation").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        for hidden in ("#chat-send", "#chat-stop", "#chat-clear", "#chat-regenerate"):
            assert not page.locator(hidden).is_visible(), hidden
        assert not page.get_by_text("How do I read a CSV file").is_visible()  # the examples
        assert page.get_by_role("button", name="Edit a copy").is_visible()
        assert "A cache?" in page.locator("#chatbot").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "shared-chat.png"), full_page=True)
        # The page's CSP: an image from another origin (here, one planted by script) is blocked, not fetched.
        blocked = page.evaluate("""(url) => new Promise((done) => {
            document.addEventListener('securitypolicyviolation', (e) => done(e.violatedDirective), {once: true});
            new Image().src = url; setTimeout(() => done(null), 3000); })""", "http://127.0.0.2:9/pixel.png")
        assert blocked is not None and blocked.startswith("img-src")
        policy = httpx.get(server.url + f"/?share={shared['id']}").headers["content-security-policy"]
        assert "img-src 'self' data: blob:" in policy
        missing = page.goto(server.url + "/s/AAAAAAAAAAAAAAAAAAAAAA")
        assert missing is not None and missing.status == 404
        assert page.get_by_role("heading", name="Shared generation not found").is_visible()
    finally:
        context.close()


def test_a_shared_fill_cannot_be_typed_into_until_edit_a_copy(browser, nano_server):
    code = "def add(a, b):\n    <FILL_HERE>\n"
    generated = httpx.post(nano_server.url + "/api/generate", timeout=60, json={
        "mode": "fill", "code": code, "params": {"temperature": 0, "max_new_tokens": 8}}).json()
    shared = httpx.post(nano_server.url + "/api/shares", json={"generation_id": generated["id"]}).json()
    context, page = new_page(browser, nano_server.url + f"/?share={shared['id']}")
    try:
        page.locator("#fill-shared-banner").get_by_text("Shared generation").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.locator("#fill-code .cm-content").click()
        page.keyboard.type("XYZ")
        assert "XYZ" not in code_text(page, "fill-code")
        assert not page.locator("#fill-stop").is_visible() and not page.locator("#fill-run").is_visible()
        page.get_by_role("button", name="Edit a copy").click()
        page.locator("#fill-run").wait_for(timeout=10_000)
        page.locator("#fill-code .cm-content").click()
        page.keyboard.type("XYZ")
        assert "XYZ" in code_text(page, "fill-code")
    finally:
        context.close()


def test_an_applied_fill_candidate_keeps_a_hole_and_is_what_share_shares(browser, nano_server):
    context, page = new_page(browser, nano_server.url + "/")
    try:
        open_tab(page, "Fill in the middle")
        set_slider(page, "candidates", 3)
        set_slider(page, "temperature", 1)
        page.locator("#fill-run").click()
        stats = page.locator("#fill-stats")
        stats.get_by_text(re.compile("finish: ")).wait_for(timeout=120_000)
        speed = re.search(r"([\d.]+) tok/s per candidate", stats.inner_text())
        assert speed and 0 < float(speed.group(1)) < 5_000  # one candidate's speed, not thousands of tok/s
        cards = page.locator("#fill-candidates .cand")
        if cards.count() < 2:
            pytest.skip("all candidates came out the same at this seed")
        cards.nth(1).get_by_role("button", name="Apply").click()
        page.wait_for_function("() => document.querySelector('#fill-candidates .cand:nth-child(2) .cand-head')"
                               ".innerText.includes('shown above')", timeout=10_000)
        assert "<FILL_HERE>" in code_text(page, "fill-code")  # fill on from there
        middle = cards.nth(1).locator("pre").inner_text()
        assert middle.strip() in result_text(page, "fill")
        page.locator("#fill-share").click()
        page.locator("#fill-share-confirm").click()
        page.wait_for_function("() => document.querySelector('#fill-share-link textarea, #fill-share-link input')"
                               "?.value.includes('/s/')", timeout=10_000)
        link = page.locator("#fill-share-link textarea, #fill-share-link input").first.input_value()
        assert link.endswith("?candidate=1")
    finally:
        context.close()


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_buttons_and_tabs_meet_aa_contrast_and_every_tab_fits_at_phone_width(browser, nano_server):
    context, page = new_page(browser, nano_server.url + "/", width=390)
    try:
        page.wait_for_timeout(1000)  # the tab row measures itself after the first layout
        for label in ("Chat", "Fill in the middle", "Complete", "Evaluate"):
            assert page.get_by_role("tab", name=label).is_visible(), label
        colours = page.evaluate("""() => ['#complete-run', '#complete-stop', '[role=tab][aria-selected=true]']
          .map((s) => { const e = document.querySelector(s), c = getComputedStyle(e);
            const bg = c.backgroundColor === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : c.backgroundColor;
            return [s, c.color, bg]; })""")
        for selector, foreground, background in colours:
            assert _contrast(foreground, background) >= 4.5, (selector, foreground, background)
        page.screenshot(path=str(SCREENSHOTS / "phone-390.png"), full_page=False)
        open_tab(page, "Evaluate")
        page.get_by_text("No runs saved yet.").wait_for(timeout=10_000)
    finally:
        context.close()


def test_an_empty_completion_says_so_and_a_long_candidate_line_scrolls_in_its_card(browser, tmp_path):
    long_line = "x = '" + " ".join(f"w{i}" for i in range(120)) + "'\n"  # long, and no loop to stop
    backend = FakeBackend(outputs=["", long_line, "y = 1\n"])
    server = serve(fake_playground(Settings(data_dir=tmp_path), backend))
    context, page = new_page(browser, server.url + "/")
    try:
        open_tab(page, "Complete")
        page.locator("#complete-run").click()
        page.locator("#complete-stats").get_by_text("The model wrote nothing").wait_for(timeout=60_000)
        set_slider(page, "candidates", 2)
        set_slider(page, "temperature", 1)
        page.locator("#complete-run").click()
        cards = page.locator("#complete-candidates .cand")
        cards.nth(1).wait_for(timeout=60_000)
        widths = page.evaluate("""() => [...document.querySelectorAll('#complete-candidates .cand')].map((card) => {
            const pre = card.querySelector('pre');
            return [card.getBoundingClientRect().width, pre.scrollWidth, pre.clientWidth]; })""")
        grid = page.locator("#complete-candidates .cands").bounding_box()
        assert grid is not None
        assert all(card <= grid["width"] + 1 for card, _, _ in widths)  # no card spills out of the grid
        assert any(scroll > client for _, scroll, client in widths)  # the long line scrolls inside its card
    finally:
        context.close()
        server.stop()


def test_a_reply_that_opens_with_code_shows_as_code_without_its_fence_marks(browser, tmp_path):
    backend = FakeBackend(outputs=['\ndef add(a, b):\n    """Return the sum."""\n    return a + b\n'] * 3)
    server = serve(fake_playground(Settings(data_dir=tmp_path), backend))
    context, page = new_page(browser, server.url + "/")
    try:
        page.locator("#chat-message textarea").fill("Write the body")
        page.keyboard.press("Enter")
        page.locator("#chat-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=60_000)
        chatbot = page.locator("#chatbot")
        assert chatbot.locator("pre").count() >= 1 and "~~~" not in chatbot.inner_text()
        assert 'def add(a, b):\n    """Return the sum."""\n    return a + b' in chatbot.locator("pre").last.inner_text()
    finally:
        context.close()
        server.stop()
