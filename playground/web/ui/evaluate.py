"""The Evaluate tab: HumanEval runs saved by ``python -m playground.evaluate``, read-only.

Runs are started from the command line (they execute model-written code, so
the web app never starts one); this tab lists what was saved under
``<data-dir>/evaluations``, with each run's summary against the model card and
its problems. A failed problem shows the completion and why it failed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from playground.evaluate.errors import RunFileError
from playground.evaluate.report import summary
from playground.evaluate.results import EvaluationResult, RunEntry, list_runs, load_run
from playground.web.ui.common import UiContext, Updates, bind
from playground.web.ui.parts import verbatim_code

_HOW = ("Runs appear here once saved: `python -m playground.evaluate humaneval --model <id>` (add "
        "`--limit 10` for a quick look). Each run sends HumanEval's prompts through this app's own serving "
        "path and tests every completion in a sandbox.")


_NO_RUNS = "**No runs saved yet.** Start one with the command above; it appears here when it is saved."
_WROTE_NOTHING = "# The model wrote nothing for this problem: an empty completion."


@dataclass
class EvaluateTab:
    refresh: gr.Button
    runs: gr.Dropdown
    summary: gr.Code
    problems: gr.Dataframe
    problem: gr.Dropdown
    completion: gr.Code
    error: gr.Textbox
    empty: gr.Markdown  # what the tab says while there is no saved run


def build_evaluate_tab(ctx: UiContext) -> EvaluateTab:
    gr.Markdown(_HOW)
    with gr.Row():
        runs = gr.Dropdown([], label="Saved runs (newest first)", scale=4, elem_id="eval-runs")
        refresh = gr.Button("Refresh", size="sm", scale=1, elem_id="eval-refresh")
    empty = gr.Markdown(_NO_RUNS, elem_id="eval-empty")
    summary_box = gr.Code(language=None, interactive=False, label="Summary", elem_id="eval-summary")
    problems = gr.Dataframe(headers=["problem", "passed", "samples", "first error"], interactive=False,
                            elem_id="eval-problems")
    problem = gr.Dropdown([], label="Look at a problem", elem_id="eval-problem")
    completion = verbatim_code(language="python", interactive=False, label="Completion", elem_id="eval-completion")
    error = gr.Textbox(label="Why it failed", interactive=False, elem_id="eval-error")
    return EvaluateTab(refresh, runs, summary_box, problems, problem, completion, error, empty)


def _directory(ctx: UiContext) -> Path:
    return ctx.playground.settings.data_dir / "evaluations"


def _label(entry: RunEntry) -> str:
    card = "" if entry.card_pass_at_1 is None else f" (card {entry.card_pass_at_1:.3f})"
    return (f"{entry.created_at[:19]} · {entry.model} · {entry.backend} · {entry.problems} problems · "
            f"pass@1 {entry.pass_at_1:.3f}{card}")


def refresh(ctx: UiContext, tab: EvaluateTab) -> Updates:
    entries = list_runs(_directory(ctx))
    choices = [(_label(e), e.path.name) for e in entries]
    return {tab.runs: gr.Dropdown(choices=choices, value=choices[0][1] if choices else None),
            tab.empty: gr.update(visible=not choices)}


def _load(ctx: UiContext, name: str | None) -> EvaluationResult | None:
    """The run called ``name``, only if it is a file in the runs folder: a name is never a path.
    Only that one file is read (listing the runs reads them all)."""
    if not name:
        return None
    path = next((p for p in _directory(ctx).glob("*.json") if p.name == name), None)
    if path is None:
        raise gr.Error("That run is no longer saved here. Press Refresh.", print_exception=False)
    try:
        return load_run(path)
    except RunFileError:  # its message names a server path: the log has it, the user gets this
        raise gr.Error(f"The run {html.escape(path.name)} cannot be read. Re-run the evaluation.",
                       print_exception=False) from None


def show_run(ctx: UiContext, tab: EvaluateTab, name: str | None) -> Updates:
    result = _load(ctx, name)
    if result is None:
        return {tab.summary: "", tab.problems: [], tab.problem: gr.Dropdown(choices=[], value=None)}
    rows = [[p.task_id, p.passed, p.samples, next((e for e in p.errors if e), "")] for p in result.per_problem]
    failed = [p.task_id for p in result.per_problem if p.passed < p.samples]
    return {tab.summary: summary(result), tab.problems: rows,
            tab.problem: gr.Dropdown(choices=[p.task_id for p in result.per_problem],
                                     value=failed[0] if failed else None)}


def show_problem(ctx: UiContext, tab: EvaluateTab, name: str | None, task_id: str | None) -> Updates:
    result = _load(ctx, name)
    found = next((p for p in result.per_problem if p.task_id == task_id), None) if result else None
    if found is None:
        return {tab.completion: "", tab.error: ""}
    index = next((i for i, e in enumerate(found.errors) if e), 0)
    completion = found.completions[index] if index < len(found.completions) else ""
    error = found.errors[index] if index < len(found.errors) else None
    if not completion.strip():  # an empty box beside "AssertionError" reads as a display fault
        return {tab.completion: _WROTE_NOTHING,
                tab.error: f"The model wrote nothing, so the problem's tests failed: {error or 'no error recorded'}"}
    return {tab.completion: completion, tab.error: error or "Passed."}


def wire_evaluate(ctx: UiContext, tab: EvaluateTab, quiet: dict[str, Any], tab_select: gr.Tab) -> None:
    tab.refresh.click(bind(refresh, ctx, tab), None, [tab.runs, tab.empty], **quiet)
    tab_select.select(bind(refresh, ctx, tab), None, [tab.runs, tab.empty], **quiet)
    tab.runs.change(bind(show_run, ctx, tab), tab.runs, [tab.summary, tab.problems, tab.problem], **quiet)
    tab.problem.change(bind(show_problem, ctx, tab), [tab.runs, tab.problem], [tab.completion, tab.error], **quiet)
