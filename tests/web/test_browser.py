"""The UI in a real browser: Playwright driving Debian's chromium against the real app on nano-starcoder."""

from __future__ import annotations

import re
import time

import pytest

pytest.importorskip("playwright.sync_api")

from playground.web.ui.parts import COMPLETE_EXAMPLE  # noqa: E402
from tests.web.browser_support import BROWSER_MARKS, SCREENSHOTS, browser  # noqa: E402,F401 - fixture

pytestmark = [*BROWSER_MARKS]


@pytest.fixture
def page(browser, nano_server):
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    page = context.new_page()
    page.goto(nano_server.url + "/")
    page.wait_for_selector("#model", timeout=30_000)  # the model picker: on every tab
    yield page
    context.close()


def code_text(page, elem_id: str) -> str:
    """The editor's text, line by line, as the user sees it."""
    return page.evaluate(
        f"[...document.querySelectorAll('#{elem_id} .cm-line')].map(e => e.textContent).join('\\n')"
    )


RESULT_TEXT_JS = """(mode) => { const root = document.querySelector(`#${mode}-probs .result-view`);
  if (!root) return ''; const copy = root.cloneNode(true);
  copy.querySelectorAll('.tip, .nl').forEach((e) => e.remove()); return copy.textContent; }"""


def result_text(page, mode: str) -> str:
    """The tab's result as its marked view shows it (the text, without tooltips and newline marks)."""
    return page.evaluate(RESULT_TEXT_JS, mode)


def set_slider(page, name: str, value: int) -> None:
    accordion = page.get_by_role("button", name=re.compile("^Parameters"))
    if not page.locator(f"#param-{name}").is_visible():
        accordion.click()
    box = page.locator(f"#param-{name} input[type=number]")
    box.wait_for(state="visible")
    for _ in range(3):  # an entry made while the accordion is still opening can be lost: set it until it holds
        box.fill(str(value))
        box.press("Enter")
        page.wait_for_timeout(200)
        if box.input_value() == str(value):
            return
    raise AssertionError(f"the {name} slider did not take {value}")


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()


def test_complete_streams_and_keeps_indentation(page):
    open_tab(page, "Complete")
    page.locator("#complete-run").click()
    stats = page.locator("#complete-stats")
    stats.get_by_text(re.compile("finish: ")).wait_for(timeout=120_000)
    assert re.search(r"\d+ tokens .* finish: (length|eos|stop) .* seed \d+", stats.inner_text())  # stop: a loop
    result = result_text(page, "complete")
    assert result.startswith(COMPLETE_EXAMPLE)
    page.screenshot(path=str(SCREENSHOTS / "complete.png"), full_page=True)


def test_fill_marks_the_middle_and_never_leaks_fim_tokens(page):
    open_tab(page, "Fill in the middle")
    page.locator("#fill-run").click()
    page.locator("#fill-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=120_000)
    result = result_text(page, "fill")
    assert "    numbers = [0, 1]\n" in result and result.rstrip().endswith("    return numbers[:n]")
    assert "<fim_" not in result and "<|endoftext|>" not in result and "<FILL_HERE>" not in result
    assert "of the result were generated" in page.locator("#fill-mark").inner_text() or "wrote nothing" in page.locator("#fill-mark").inner_text()
    page.get_by_role("button", name=re.compile("^Raw prompt")).click()
    raw = page.locator("#fill-raw textarea").input_value()
    assert raw.startswith("<fim_prefix><fim_suffix>") and "<fim_middle>def fibonacci" in raw  # suffix first
    page.screenshot(path=str(SCREENSHOTS / "fill.png"), full_page=True)
    # One result view: the middle is marked in place, not shown again in a box of its own.
    marked = page.locator("#fill-probs .result-view mark.gen")
    assert marked.count() == 1 and marked.text_content() in result and not page.locator("#fill-middle").is_visible()
    page.locator("#fill-view").get_by_text("Code", exact=True).click()
    page.locator("#fill-result .cm-line").first.wait_for(timeout=10_000)  # the same result, in the code editor
    assert code_text(page, "fill-result").rstrip("\n") == result.rstrip("\n")
    assert not page.locator("#fill-probs").is_visible()


def test_fill_without_a_hole_shows_a_specific_error(page):
    open_tab(page, "Fill in the middle")
    editor = page.locator("#fill-code .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("x = 1")
    page.locator("#fill-run").click()
    page.get_by_text(re.compile("Mark the place to fill with <FILL_HERE>: the code has no such marker")).first.wait_for(
        timeout=30_000
    )


def test_the_page_opens_on_the_tab_that_suits_nano_starcoder(page):
    """nano's window holds none of the Tech Assistant dialogues, so its page opens on Complete."""
    assert page.get_by_role("tab", name="Complete").get_attribute("aria-selected") == "true"
    assert page.locator("#complete-run").is_visible()


@pytest.mark.slow
def test_chat_replies_shows_the_meter_and_renders_hostile_html_inert(page):
    open_tab(page, "Chat")
    set_slider(page, "max_new_tokens", 16)
    meter = page.locator("#context-meter")
    meter.get_by_text(re.compile(r"Context: \d+ prompt")).wait_for(timeout=30_000)
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> what is 2+2?'
    # The meter is recomputed as the message is typed: once it counts 16 reply tokens, the send uses 16 too.
    # On a loaded machine the first slider entry can be lost, so it is set again until the meter agrees.
    for attempt in range(3):
        page.locator("#chat-message textarea").fill(hostile + " " * attempt)
        try:
            meter.get_by_text(re.compile(r"\+ 16 reply")).wait_for(timeout=10_000)
            break
        except Exception:
            set_slider(page, "max_new_tokens", 16)
    page.locator("#chat-send").click()
    try:
        page.locator("#chat-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / "chat-failure.png"), full_page=True)  # for the CI log reader
        raise
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#chatbot").get_by_text("what is 2+2?").count() >= 1
    assert "example dialogues" in page.locator("#chat-stats").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "chat.png"), full_page=True)


def test_stop_really_stops_the_model(page):
    set_slider(page, "max_new_tokens", 2048)
    set_slider(page, "repetition_penalty", 1)
    set_slider(page, "temperature", 1)
    # Seed 0 makes nano-starcoder write 473 tokens on this prompt (to the end of its window; checked
    # 2026-12-06), so Stop always has time to act.
    page.locator("#param-seed textarea, #param-seed input").first.fill("0")
    open_tab(page, "Complete")
    page.locator("#complete-run").click()
    prompt_length = len(code_text(page, "complete-prompt"))
    page.wait_for_function(f"({RESULT_TEXT_JS})('complete').length > {prompt_length + 20}", timeout=30_000)
    page.locator("#complete-stop").click()
    stats = page.locator("#complete-stats")
    stats.get_by_text(re.compile("finish: ")).wait_for(timeout=30_000)
    text = stats.inner_text()
    assert "finish: cancelled" in text
    assert int(re.search(r"(\d+) tokens", text).group(1)) < 500


def test_share_flow_in_the_ui_warns_first_then_gives_a_link(page):
    set_slider(page, "max_new_tokens", 8)
    open_tab(page, "Complete")
    page.locator("#complete-run").click()
    page.locator("#complete-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=120_000)
    page.locator("#complete-share").click()
    page.get_by_text("Anyone with the link can see this generation").wait_for(timeout=10_000)
    page.locator("#complete-share-confirm").click()
    link = page.locator("#complete-share-link textarea, #complete-share-link input").first
    page.wait_for_function("document.querySelector('#complete-share-link textarea, #complete-share-link input')"
                           "?.value.includes('/s/')", timeout=20_000)
    assert "/s/" in link.input_value()
    assert "delete#token=" in page.locator("#complete-share-delete").inner_html()
    page.screenshot(path=str(SCREENSHOTS / "share.png"), full_page=True)


def test_share_link_reopens_the_fill_generation_read_only(page, nano_server):
    import httpx

    code = "class Stack:\n    def push(self, item):\n        <FILL_HERE>\n\n    def pop(self):\n        return self.items.pop()\n"
    record = httpx.post(nano_server.url + "/api/generate", timeout=60,
                        json={"mode": "fill", "code": code, "params": {"max_new_tokens": 12, "seed": 5}}).json()
    created = httpx.post(nano_server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    page.goto(f"{nano_server.url}/s/{created['id']}")
    page.locator("#fill-shared-banner").get_by_text("Shared generation").wait_for(timeout=30_000)
    assert code_text(page, "fill-code") == code.rstrip("\n") or code_text(page, "fill-code") == code
    assert result_text(page, "fill").rstrip("\n") == record["text"].rstrip("\n")
    page.get_by_role("button", name=re.compile("^Parameters")).click()
    assert page.locator("#param-seed input, #param-seed textarea").first.input_value() == "5"
    assert not page.locator("#fill-run").is_visible()  # read-only: nothing to run until "Edit a copy"
    page.screenshot(path=str(SCREENSHOTS / "shared-fill.png"), full_page=True)
    page.locator("#fill-edit-copy").click()
    page.locator("#fill-run").wait_for(state="visible", timeout=10_000)
    assert not page.locator("#fill-shared-banner").is_visible()


def test_xss_stored_in_a_share_never_executes(page, nano_server):
    import httpx

    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold?</b>'
    record = httpx.post(nano_server.url + "/api/generate", timeout=60,
                        json={"mode": "chat", "messages": [{"role": "user", "content": hostile}],
                              "params": {"max_new_tokens": 4}}).json()
    created = httpx.post(nano_server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    page.goto(f"{nano_server.url}/s/{created['id']}")
    page.locator("#chat-shared-banner").get_by_text("Shared generation").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__pwned") is None


def completions(url: str) -> float:
    import httpx

    lines = httpx.get(url + "/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("playground_generations_total{") and 'mode="complete"' in line)


def test_rerun_of_a_shared_greedy_generation_gives_the_same_output(page, nano_server):
    import httpx

    record = httpx.post(nano_server.url + "/api/generate", timeout=60, json={
        "mode": "complete", "prompt": "def area(radius):\n", "params": {"max_new_tokens": 10, "temperature": 0}}).json()
    created = httpx.post(nano_server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    page.goto(f"{nano_server.url}/s/{created['id']}")
    page.locator("#complete-shared-banner").get_by_text("Shared generation").wait_for(timeout=30_000)
    before = completions(nano_server.url)
    page.locator("#complete-rerun").click()
    deadline = time.monotonic() + 120
    while completions(nano_server.url) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert completions(nano_server.url) == before + 1  # the model really ran again
    page.wait_for_timeout(1000)
    assert result_text(page, "complete").rstrip("\n") == (record["inputs"]["prompt"] + record["text"]).rstrip("\n")


def test_delete_link_removes_the_share(page, nano_server):
    import httpx

    record = httpx.post(nano_server.url + "/api/generate", timeout=60,
                        json={"mode": "complete", "prompt": "x = ", "params": {"max_new_tokens": 4}}).json()
    created = httpx.post(nano_server.url + "/api/shares", json={"generation_id": record["id"]}).json()
    page.goto(f"{nano_server.url}/s/{created['id']}/delete#token={created['delete_token']}")
    page.locator("#delete").click()
    page.get_by_text("Deleted.").wait_for(timeout=10_000)
    assert httpx.get(f"{nano_server.url}/api/shares/{created['id']}").status_code == 404
