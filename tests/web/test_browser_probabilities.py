"""Token probabilities and candidates in a real browser (Playwright driving Debian's chromium): hover shows
the alternatives, clicking one generates again from it, candidates are listed and applied, and hostile
token text stays text."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api")

from playground.backends.fake import FakeBackend  # noqa: E402
from playground.web.ui.parts import COMPLETE_EXAMPLE  # noqa: E402
from tests.web.browser_support import BROWSER_MARKS, SCREENSHOTS, browser  # noqa: E402,F401 - fixture
from tests.web.test_browser import code_text, open_tab, result_text, set_slider  # noqa: E402

pytestmark = [*BROWSER_MARKS]
PROMPT = COMPLETE_EXAMPLE


def new_page(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 1800})
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#model", timeout=30_000)  # the model picker: on every tab
    # The page's load event ends by filling the context meter; a slider set before then can be reset.
    # The meter is on the Chat tab (nano's page opens on Complete), so look there.
    open_tab(page, "Chat")
    page.locator("#context-meter").get_by_text(re.compile(r"Context: \d+ prompt")).wait_for(timeout=30_000)
    return context, page


def finished_id(page, mode: str, previous: str | None = None) -> str:
    """Wait for the tab's run to finish (a new generation id in its stats) and return that id."""
    stats = page.locator(f"#{mode}-stats")
    for _ in range(240):
        found = re.search(r"id ([\w-]+)", stats.inner_text())
        if found and found.group(1) != previous and "finish: " in stats.inner_text():
            return found.group(1)
        page.wait_for_timeout(500)
    raise AssertionError(f"no finished generation in #{mode}-stats: {stats.inner_text()!r}")


def test_hover_shows_alternatives_and_clicking_one_generates_from_it(browser, nano_server):
    context, page = new_page(browser, nano_server.url)
    try:
        page.locator("#param-probabilities input").check()
        # Greedy, so the text and its alternatives are the same on every run.
        set_slider(page, "temperature", 0)
        open_tab(page, "Complete")
        page.locator("#complete-run").click()
        first = finished_id(page, "complete")
        tokens = page.locator("#complete-probs .tok")
        assert tokens.count() > 3
        assert page.locator("#complete-probs .probs-legend").is_visible()
        token = tokens.nth(2)
        token.hover()
        tip = token.locator(".tip")
        assert tip.is_visible() and "%" in tip.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "probabilities.png"), full_page=True)
        # A token's own text: its content without the tooltip and the newline marks.
        own = "e => [...e.childNodes].filter(n => !(n.classList && (n.classList.contains('tip') || " \
              "n.classList.contains('nl')))).map(n => n.textContent).join('')"
        before = "".join(tokens.nth(i).evaluate(own) for i in range(2))
        choice = tip.locator("button.alt").first
        shown = choice.inner_text().rsplit(" ", 2)[0]  # "text 12.3 %": the alternative as shown
        choice.click()
        second = finished_id(page, "complete", previous=first)
        editor = code_text(page, "complete-prompt")
        assert editor.startswith(PROMPT.rstrip("\n")) and second != first
        visible = editor[len(PROMPT):]
        assert visible.startswith(before)
        typed = visible[len(before):].replace(" ", "·").replace("\n", "↵")
        assert typed.startswith(shown.replace("∅", ""))
    finally:
        context.close()


def test_candidates_are_listed_ranked_and_applied(browser, nano_server):
    context, page = new_page(browser, nano_server.url)
    try:
        open_tab(page, "Complete")
        set_slider(page, "candidates", 3)
        set_slider(page, "temperature", 1)
        for name, value in (("candidates", "3"), ("temperature", "1")):
            assert page.locator(f"#param-{name} input[type=number]").input_value() == value
        page.locator("#complete-run").click()
        finished_id(page, "complete")
        cards = page.locator("#complete-candidates .cand")
        assert 1 <= cards.count() <= 3
        heads = [cards.nth(i).locator(".cand-head").inner_text() for i in range(cards.count())]
        # An empty candidate (the model ended at once) has no score and comes last.
        scores = [float(m.group(1)) if (m := re.search(r"mean log-prob (-?[\d.]+)", h)) else float("-inf")
                  for h in heads]
        assert scores == sorted(scores, reverse=True)
        texts = [cards.nth(i).locator("pre").inner_text() for i in range(cards.count())]
        chosen = max(range(len(texts)), key=lambda i: len(texts[i].strip()))  # a candidate with text
        last = cards.nth(chosen)
        last.get_by_role("button", name="Apply").click()
        # Applied: the prompt editor holds the prompt and that candidate, as the result view does.
        page.wait_for_function(
            "n => [...document.querySelectorAll('#complete-prompt .cm-line')].map(e => e.textContent).join('\\n')"
            ".length > n", arg=len(PROMPT) - 1, timeout=10_000)
        # Gradio may paint the result view a moment after the editor (one CI run read it first): wait for it.
        for _ in range(100):
            if texts[chosen].strip() in result_text(page, "complete"):
                break
            page.wait_for_timeout(100)
        assert texts[chosen].strip() in result_text(page, "complete")
        # The editor renders only the lines in view (CodeMirror), so its text is a prefix of the result's.
        assert result_text(page, "complete").startswith(code_text(page, "complete-prompt").rstrip("\n"))
        assert "shown above" in last.locator(".cand-head").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "candidates.png"), full_page=True)
        # Share that candidate: the link opens the same generation on it.
        last.get_by_role("button", name="Share").click()
        page.locator("#complete-share-confirm").click()
        link = page.locator("#complete-share-link textarea, #complete-share-link input").first
        link.wait_for(timeout=10_000)
        page.wait_for_function("() => document.querySelector('#complete-share-link textarea, "
                               "#complete-share-link input').value.includes('/s/')", timeout=10_000)
        url = link.input_value()
        assert url.endswith(f"?candidate={chosen}") if chosen else "candidate=" not in url
        shared = context.new_page()
        shared.goto(url)
        shared.locator("#complete-candidates .cand").first.wait_for(timeout=30_000)
        reopened = shared.locator("#complete-candidates .cand")
        assert "shown above" in reopened.nth(chosen).locator(".cand-head").inner_text()
        assert result_text(shared, "complete") == result_text(page, "complete")
    finally:
        context.close()


def test_clicking_an_alternative_in_fill_moves_the_hole_after_it(browser, nano_server):
    context, page = new_page(browser, nano_server.url)
    try:
        page.locator("#param-probabilities input").check()
        open_tab(page, "Fill in the middle")
        page.locator("#fill-run").click()
        first = finished_id(page, "fill")
        # The first token with alternatives (a healed first token lists only those that go on from the code)
        token = page.locator("#fill-probs .tok:has(button.alt)").first
        token.hover()
        token.locator("button.alt").first.click()
        finished_id(page, "fill", previous=first)
        code = code_text(page, "fill-code")
        prefix = 'def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n    numbers'
        assert code.startswith(prefix) and code.count("<FILL_HERE>") == 1
        assert code.endswith("return numbers[:n]") or code.endswith("return numbers[:n]\n")
    finally:
        context.close()


def test_hostile_token_text_renders_as_text(browser, fake_server):
    hostile = "<img src=x onerror=window.pwned=1> <script>window.pwned=2</script>"
    server, _ = fake_server(FakeBackend(outputs=[hostile] * 4))
    context, page = new_page(browser, server.url)
    try:
        page.locator("#param-probabilities input").check()
        open_tab(page, "Complete")
        page.locator("#complete-run").click()
        finished_id(page, "complete")
        probs = page.locator("#complete-probs .probs")
        assert "<img src=x" in probs.inner_text()
        assert page.locator("#complete-probs img").count() == 0 and page.locator("#complete-probs script").count() == 0
        assert page.evaluate("window.pwned") is None
    finally:
        context.close()
