"""The Complete tab: plain continuation of a prompt, and the public ``/complete`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.modes import Restored
from playground.record import Generation
from playground.web.ui.attribution_view import attribution_html
from playground.web.ui.common import (
    Banner,
    SharePanel,
    UiContext,
    Updates,
    bind,
    build_banner,
    build_share_panel,
    finished,
    params_from,
)
from playground.web.ui.parts import COMPLETE_EXAMPLE, COMPLETE_EXAMPLES, stats_line
from playground.web.ui.parts import verbatim_code as code_box


@dataclass
class CompleteTab:
    banner: Banner
    prompt: gr.Code
    run: gr.Button
    stop: gr.Button
    result: gr.Code
    stats: gr.Markdown
    attribution: gr.HTML
    share: SharePanel

    @property
    def editable(self) -> list[Any]:
        return [self.prompt]

    @property
    def run_buttons(self) -> list[gr.Button]:
        return [self.run]

    def inputs(self, ctx: UiContext) -> list[Any]:
        return [self.prompt, ctx.model, *ctx.params.inputs]

    @property
    def outputs(self) -> list[Any]:
        return [self.result, self.stats, self.attribution, self.share.record]


def build_complete_tab(ctx: UiContext) -> CompleteTab:
    banner = build_banner("complete")
    prompt = code_box(COMPLETE_EXAMPLE, language="python", interactive=True, lines=10,
                      label="Prompt (Ctrl/Cmd+Enter completes)", elem_id="complete-prompt")
    with gr.Row():
        run = gr.Button("Complete", variant="primary", elem_id="complete-run", elem_classes=["submit"])
        stop = gr.Button("Stop", variant="stop", elem_id="complete-stop")
    result = code_box(language="python", interactive=False, lines=12, label="Prompt + continuation",
                      elem_id="complete-result")
    stats = gr.Markdown(elem_id="complete-stats")
    attribution = gr.HTML(elem_id="complete-attribution")
    share = build_share_panel("complete")
    gr.Examples(COMPLETE_EXAMPLES, prompt, label="Try")
    return CompleteTab(banner, prompt, run, stop, result, stats, attribution, share)


def complete(ctx: UiContext, tab: CompleteTab, prompt: str, model: str, max_new_tokens: float, temperature: float,
             top_p: float, top_k: float, repetition_penalty: float, stop: str, seed: str,
             request: gr.Request) -> Iterator[Updates]:
    """The public ``/complete`` endpoint: the prompt and its continuation, streamed."""
    params = params_from(max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop, seed)
    run = ctx.start("complete", model, {"prompt": prompt}, params, request)
    yield {tab.result: prompt, tab.stats: "Generating…", tab.attribution: ""}
    for raw in ctx.stream(run, request):
        yield {tab.result: prompt + run.present(raw).text}
    record = finished(run)
    yield {tab.result: prompt + record.text, tab.stats: stats_line(record), tab.share.record: record.id,
           tab.attribution: attribution_html(record.attribution, record.text)}


def show_shared(tab: CompleteTab, restored: Restored, record: Generation) -> Updates:
    return {tab.prompt: restored.inputs["prompt"], tab.result: restored.shown, tab.stats: stats_line(record),
            tab.attribution: attribution_html(record.attribution, record.text)}


def wire_complete(ctx: UiContext, tab: CompleteTab, generation: dict[str, Any]) -> None:
    tab.run.click(bind(complete, ctx, tab), tab.inputs(ctx), tab.outputs, api_name="complete", **generation)
