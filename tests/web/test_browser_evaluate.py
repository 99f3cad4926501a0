"""The Evaluate tab in a real browser: a saved HumanEval run, its summary against the card, and a failed
problem's completion and error. The run is made with the real sandbox on two problems (one answered
with its canonical solution, one wrongly) and saved where the CLI saves runs."""

from __future__ import annotations

import pytest

from playground.config import Settings
from playground.evaluate import Deployment, EvaluationConfig, evaluate, load_problems, save_run
from support.servers import serve
from tests.conftest import fake_playground
from tests.web.browser_support import BROWSER_MARKS, SCREENSHOTS, browser  # noqa: F401 - fixture

pytestmark = [*BROWSER_MARKS, pytest.mark.timeout(180)]
WRONG = "    return '<b>not it</b>'\n"


@pytest.fixture
def server_with_a_run(tmp_path):
    problems = load_problems(limit=2)
    answers = {problems[0].prompt: problems[0].canonical_solution, problems[1].prompt: WRONG}

    def generate(prompt: str, **_: object) -> str:
        return answers[prompt]

    result = evaluate(problems, generate, EvaluationConfig(progress=False), complete_set=False,
                      deployment=Deployment("starcoder", "tgi", "bfloat16", "none", "main"))
    save_run(result, tmp_path / "evaluations")
    server = serve(fake_playground(Settings(data_dir=tmp_path)))
    yield server, problems
    server.stop()


def test_a_saved_run_shows_its_summary_and_a_failed_problem(browser, server_with_a_run):  # noqa: F811
    server, problems = server_with_a_run
    page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
    page.goto(server.url + "/")
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-summary").get_by_text("pass@1").first.wait_for(timeout=30_000)
    summary = page.locator("#eval-summary").inner_text()
    assert "0.500" in summary and "0.336" in summary  # the score beside the card's figure
    page.locator("#eval-error textarea").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('#eval-error textarea').value.length > 0", timeout=30_000)
    assert "Passed." != page.locator("#eval-error textarea").input_value()
    assert "not it" in page.locator("#eval-completion").inner_text()
    assert page.evaluate("document.querySelectorAll('#eval-completion b').length") == 0  # shown as text
    page.screenshot(path=str(SCREENSHOTS / "evaluate.png"), full_page=True)


@pytest.mark.slow
def test_an_empty_completion_and_no_runs_read_as_such(browser, tmp_path):  # noqa: F811
    """A problem the model answered with nothing says so, instead of an empty box beside "AssertionError";
    a server with no saved runs says it has none."""
    problem = load_problems(limit=1)[0]
    result = evaluate([problem], lambda prompt, **_: "", EvaluationConfig(progress=False), complete_set=False,
                      deployment=Deployment("starcoder", "tgi", "bfloat16", "none", "main"))
    save_run(result, tmp_path / "with-run" / "evaluations")
    for folder, check in (("with-run", "wrote nothing"), ("empty", "No runs saved yet.")):
        server = serve(fake_playground(Settings(data_dir=tmp_path / folder)))
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.goto(server.url + "/")
            page.get_by_role("tab", name="Evaluate").click()
            if folder == "empty":
                page.get_by_text(check).wait_for(timeout=30_000)
                continue
            page.wait_for_function("document.querySelector('#eval-error textarea')?.value.length > 0",
                                   timeout=30_000)
            assert check in page.locator("#eval-error textarea").input_value()
            assert check in page.locator("#eval-completion").inner_text()
            assert not page.locator("#eval-empty").is_visible()
        finally:
            server.stop()
