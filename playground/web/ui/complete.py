"""The Complete tab: plain continuation of a prompt, and the public ``/complete`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.modes import Mode, Restored
from playground.record import Generation, tokens_to_json
from playground.web.ui.attribution_view import attribution_html
from playground.web.ui.common import (
    Banner,
    ParamValues,
    SharePanel,
    TabKind,
    UiContext,
    Updates,
    bind,
    build_banner,
    build_share_panel,
    finished,
    wire_weighing,
)
from playground.web.ui.parts import COMPLETE_EXAMPLE, COMPLETE_EXAMPLES, stats_line
from playground.web.ui.parts import verbatim_code as code_box
from playground.web.ui.probability_view import (
    branch_point,
    candidates_box,
    candidates_html,
    probability_box,
    result_html,
    result_view_choice,
    wire_result_view,
)


@dataclass
class CompleteTab:
    banner: Banner
    prompt: gr.Code
    run: gr.Button
    stop: gr.Button
    view: gr.Radio  # which view of the result is shown: marked (with probabilities) or the code editor
    result: gr.Code
    stats: gr.Markdown
    probabilities: gr.HTML
    candidates: gr.HTML
    attribution: gr.HTML
    share: SharePanel
    weighed: gr.State  # {"prompt", "tokens", "record", "shown"} of the result shown, for branching and applying
    mode: Mode
    examples: gr.Dataset

    @property
    def editable(self) -> list[Any]:
        return [self.prompt]

    @property
    def live_controls(self) -> list[Any]:
        return [self.run, self.stop, self.examples]

    def inputs(self, ctx: UiContext) -> list[Any]:
        return [self.prompt, ctx.model, *ctx.params.inputs(self.mode)]

    @property
    def outputs(self) -> list[Any]:
        return [self.result, self.stats, self.probabilities, self.candidates, self.attribution, self.share.record,
                self.weighed]


def build_complete_tab(ctx: UiContext) -> CompleteTab:
    banner = build_banner("complete")
    prompt = code_box(COMPLETE_EXAMPLE, language="python", interactive=True, lines=10,
                      label="Prompt (Ctrl/Cmd+Enter completes)", elem_id="complete-prompt", max_lines=30,
                      elem_classes=["input-editor"])
    with gr.Row():
        run = gr.Button("Complete", variant="primary", elem_id="complete-run", elem_classes=["submit"])
        stop = gr.Button("Stop", variant="stop", elem_id="complete-stop")
    view = result_view_choice("complete")
    probabilities = probability_box("complete")  # the result, its continuation marked or coloured by probability
    result = code_box(language="python", interactive=False, lines=12, max_lines=30, label="Prompt + continuation",
                      elem_id="complete-result", visible=False)
    stats = gr.Markdown(elem_id="complete-stats")
    candidates = candidates_box("complete")
    attribution = gr.HTML(elem_id="complete-attribution")
    share = build_share_panel("complete")
    examples = gr.Examples(COMPLETE_EXAMPLES, prompt, label="Try").dataset
    return CompleteTab(banner, prompt, run, stop, view, result, stats, probabilities, candidates, attribution, share,
                       gr.State(None), ctx.playground.modes.named("complete"), examples)


def complete(ctx: UiContext, tab: CompleteTab, prompt: str, model: str, values: ParamValues,
             request: gr.Request) -> Iterator[Updates]:
    """The public ``/complete`` endpoint: the prompt and its continuation, streamed (several candidates
    arrive together, ranked)."""
    run = ctx.start(tab.mode, model, {"prompt": prompt}, values, request)
    waiting = f"Generating {run.params.n} candidates…" if run.params.n > 1 else "Generating…"
    # Every update names all the tab's shown outputs: Gradio rebuilds each one an update leaves out.
    shown: Updates = {tab.result: prompt, tab.stats: waiting, tab.attribution: "", tab.probabilities: "",
                      tab.candidates: ""}
    yield shown
    for raw in ctx.stream(run, request):
        text = run.present(raw).text
        yield {**shown, tab.result: prompt + text, tab.probabilities: result_html(prompt, text, "", None, False)}
    record = finished(run)
    yield {tab.stats: stats_line(record), tab.share.record: record.id, **_shown(tab, record, prompt)}


def _shown(tab: CompleteTab, record: Generation, prompt: str, candidate: int = 0) -> Updates:
    """The result as one of its candidates (the best by default), with what the model weighed for it:
    every panel describes the candidate shown, and Share shares it."""
    shown, tokens, report = record.viewed(candidate)
    text = shown.text
    token_data = None if tokens is None else tokens_to_json(tokens)
    weighed = {"prompt": prompt, "tokens": token_data, "record": record, "shown": candidate}
    return {tab.result: prompt + text, tab.probabilities: result_html(prompt, text, "", token_data, branchable=True),
            tab.candidates: candidates_html(record.candidates, candidate), tab.weighed: weighed,
            tab.attribution: attribution_html(report, text)}


def show_shared(tab: CompleteTab, restored: Restored, record: Generation, candidate: int = 0) -> Updates:
    return {tab.prompt: restored.inputs["prompt"], tab.stats: stats_line(record),
            **_shown(tab, record, restored.inputs["prompt"], candidate)}


def branch(tab: CompleteTab, weighed: dict[str, Any] | None, event: gr.EventData) -> Updates:
    """A clicked alternative: the prompt becomes the text up to that token, with the alternative in its place."""
    start = branch_point(str(getattr(event, "choice", "")), (weighed or {}).get("tokens") or [])
    if weighed is None or start is None:
        raise gr.Error("That alternative is no longer shown; generate again.", print_exception=False)
    return {tab.prompt: gr.update(value=weighed["prompt"] + start, interactive=True)}


def pick(tab: CompleteTab, weighed: dict[str, Any] | None, event: gr.EventData) -> Updates:
    """A candidate's Apply (shown in every panel, and into the prompt, to go on from it) or Share (the
    link opens on it)."""
    index = getattr(event, "index", None)
    record: Generation | None = (weighed or {}).get("record")
    if weighed is None or record is None or not isinstance(index, int) or not 0 <= index < len(record.candidates or []):
        raise gr.Error("That candidate is no longer shown; generate again.", print_exception=False)
    if getattr(event, "action", "") == "share":
        return {tab.share.candidate: index}
    text = weighed["prompt"] + (record.candidates or [])[index].shown.text
    return {tab.prompt: gr.update(value=text, interactive=True), tab.share.candidate: None,
            **_shown(tab, record, weighed["prompt"], index)}


def wire_complete(ctx: UiContext, tab: CompleteTab, generation: dict[str, Any], quiet: dict[str, Any]) -> None:
    run = bind(complete, ctx, tab, params=ctx.params.names(tab.mode))
    tab.run.click(run, tab.inputs(ctx), tab.outputs, api_name="complete", **generation)
    wire_weighing(ctx, tab, run, branch, pick, [tab.prompt, tab.result, tab.probabilities, tab.candidates,
                                                tab.weighed, tab.attribution], generation)
    wire_result_view(tab.view, tab.probabilities, tab.result)


TAB = TabKind("complete", "Complete", build_complete_tab, wire_complete, show_shared, complete)
