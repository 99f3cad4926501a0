"""The Fill-in-the-middle tab: code with one ``<FILL_HERE>`` hole, and the public ``/fill`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.modes import Restored
from playground.prompting.fill import FILL_MARKER
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
from playground.web.ui.parts import FILL_EXAMPLE, FILL_EXAMPLES, LANGUAGES, language_for, mark_middle, stats_line
from playground.web.ui.parts import verbatim_code as code_box


@dataclass
class FillTab:
    banner: Banner
    filename: gr.Textbox
    language: gr.Dropdown
    code: gr.Code
    run: gr.Button
    stop: gr.Button
    mark: gr.Markdown
    result: gr.Code
    middle: gr.Code
    stats: gr.Markdown
    attribution: gr.HTML
    share: SharePanel
    raw: gr.Textbox

    @property
    def editable(self) -> list[Any]:
        return [self.code, self.filename]

    @property
    def run_buttons(self) -> list[gr.Button]:
        return [self.run]

    def inputs(self, ctx: UiContext) -> list[Any]:
        return [self.code, self.filename, ctx.model, *ctx.params.inputs]

    @property
    def outputs(self) -> list[Any]:
        return [self.result, self.middle, self.mark, self.stats, self.attribution, self.raw, self.share.record]


def build_fill_tab(ctx: UiContext) -> FillTab:
    banner = build_banner("fill")
    with gr.Row():
        filename = gr.Textbox(label="Filename (optional; used as <filename> metadata)", placeholder="src/fib.py",
                              elem_id="fill-filename")
        language = gr.Dropdown(LANGUAGES, value="python", label="Highlighting")
    code = code_box(FILL_EXAMPLE, language="python", interactive=True, lines=12,
                    label=f"Code with one {FILL_MARKER} hole (Ctrl/Cmd+Enter fills)", elem_id="fill-code")
    with gr.Row():
        run = gr.Button("Fill", variant="primary", elem_id="fill-run", elem_classes=["submit"])
        stop = gr.Button("Stop", variant="stop", elem_id="fill-stop")
    mark = gr.Markdown(elem_id="fill-mark")
    result = code_box(language="python", interactive=False, lines=12, label="Result", elem_id="fill-result")
    middle = code_box(language="python", interactive=False, lines=4, label="Generated middle", elem_id="fill-middle")
    stats = gr.Markdown(elem_id="fill-stats")
    attribution = gr.HTML(elem_id="fill-attribution")
    share = build_share_panel("fill")
    gr.Examples(FILL_EXAMPLES, [code, filename], label="Try")
    with gr.Accordion("Raw prompt", open=False):
        raw = gr.Textbox(lines=8, interactive=False, elem_id="fill-raw", buttons=["copy"],
                         label="Exactly what the model was given")
    return FillTab(banner, filename, language, code, run, stop, mark, result, middle, stats, attribution, share, raw)


def fill(ctx: UiContext, tab: FillTab, code: str, filename: str, model: str, max_new_tokens: float,
         temperature: float, top_p: float, top_k: float, repetition_penalty: float, stop: str, seed: str,
         request: gr.Request) -> Iterator[Updates]:
    """The public ``/fill`` endpoint: the code with its hole filled, streamed."""
    params = params_from(max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop, seed)
    run = ctx.start("fill", model, {"code": code, "filename": filename}, params, request)
    yield {tab.result: "", tab.middle: "", tab.mark: "", tab.stats: "Generating…", tab.raw: run.raw_prompt,
           tab.attribution: ""}
    for raw in ctx.stream(run, request):
        shown = run.present(raw)
        yield {tab.result: shown.text, tab.middle: shown.middle}
    record = finished(run)
    yield {tab.result: record.text, tab.middle: record.middle, tab.mark: mark_middle(code, record.middle or ""),
           tab.stats: stats_line(record), tab.raw: record.raw_prompt, tab.share.record: record.id,
           tab.attribution: attribution_html(record.attribution, record.middle or "")}


def show_shared(tab: FillTab, restored: Restored, record: Generation) -> Updates:
    code = restored.inputs["code"]
    return {tab.code: code, tab.filename: restored.inputs["filename"], tab.result: restored.shown,
            tab.middle: restored.middle, tab.raw: record.raw_prompt, tab.stats: stats_line(record),
            tab.mark: mark_middle(code, restored.middle or ""),
            tab.attribution: attribution_html(record.attribution, record.middle or "")}


def highlight(tab: FillTab, language: str) -> Updates:
    mode = None if language == "plain text" else language
    return {box: gr.Code(language=mode) for box in (tab.code, tab.result, tab.middle)}  # type: ignore[arg-type]


def wire_fill(ctx: UiContext, tab: FillTab, generation: dict[str, Any]) -> None:
    tab.run.click(bind(fill, ctx, tab), tab.inputs(ctx), tab.outputs, api_name="fill", **generation)
    tab.filename.change(lambda name: language_for(name) or "plain text", tab.filename, tab.language,
                        api_visibility="private")
    tab.language.change(bind(highlight, tab), tab.language, [tab.code, tab.result, tab.middle],
                        api_visibility="private")
