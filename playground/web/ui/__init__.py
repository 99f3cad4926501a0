"""The Gradio Blocks: one tab per mode over one model selector and parameter panel, and a read-only
Evaluate tab of saved HumanEval runs.

Each mode's tab (``TABS``) is a small builder returning a dataclass of its
components, with module-level handlers that return ``{component: update}``
mappings; a handler takes the parameter panel's values as one list. Stop flags the run's cancel event, so the
model itself stops. A page opened as ``/?share=ID`` restores that generation
read-only (``shared_view``).
"""

from __future__ import annotations

import html
import importlib
from typing import Any

import gradio as gr

from playground.service import Playground
from playground.web.limits import WebLimits
from playground.web.ui import evaluate
from playground.web.ui.attribution_view import CSS as ATTRIBUTION_CSS
from playground.web.ui.common import (
    ActiveRuns,
    ParamPanel,
    TabKind,
    UiContext,
    bind,
    build_param_panel,
    stop_runs,
    wire_share,
)
from playground.web.ui.fill import CONTEXT_UPLOAD_JS
from playground.web.ui.parts import CSS as PARTS_CSS
from playground.web.ui.parts import SUBMIT_SHORTCUT_JS, notice
from playground.web.ui.probability_view import CSS as PROBABILITY_CSS
from playground.web.ui.shared_view import LOCK_JS, TabView, restore, wire_shared_view

HEAD = f"<script>{SUBMIT_SHORTCUT_JS}{CONTEXT_UPLOAD_JS}</script>"
CSS = PARTS_CSS + ATTRIBUTION_CSS + PROBABILITY_CSS
__all__ = ["CSS", "HEAD", "build_ui"]


def model_status(playground: Playground, model_id: str) -> str:
    slot = playground.slot(model_id)
    info, spec = slot.info(), slot.spec
    licence = f"[{spec.license}]({spec.license_url})" if spec.license_url else spec.license
    if not info.loaded:
        state = f"⏳ {slot.progress.message}" if not slot.progress.error else f"❌ {slot.progress.error}"
        return f"**{spec.id}** — {html.escape(state)}"
    where = info.endpoint or (info.placement or {}).get("summary", "")
    line = f"**{spec.id}** · {info.backend} · context {info.context_length} · {where} · licence {licence}"
    if playground.checks is not None and playground.checks.state != "ready":
        line += f"\n\n{html.escape(playground.checks.message)}"  # still indexing, or why it is unavailable
    return line


def _waiting(playground: Playground, model_id: str) -> bool:
    """Whether the status line may still change by itself: the model loading, or the index building."""
    indexing = playground.checks is not None and playground.checks.state == "indexing"
    return indexing or not playground.slot(model_id).info().loaded


def poll_status(playground: Playground, status: gr.Markdown, timer: gr.Timer, model_id: str) -> dict[Any, Any]:
    return {status: model_status(playground, model_id), timer: gr.Timer(active=_waiting(playground, model_id))}


def pick_model(playground: Playground, status: gr.Markdown, panel: ParamPanel, model_id: str) -> dict[Any, Any]:
    """A newly picked model: its status line, and its own default parameters in the sliders."""
    defaults = playground.slot(model_id).spec.defaults
    return {status: model_status(playground, model_id), **panel.show(defaults, panel.defaults_names)}


def tab_of(mode: str) -> TabKind:
    """A mode's tab: the module named like the mode in this package (``web/ui/<mode>.py``), its ``TAB``.
    So a new mode needs no list here: its module and its tab are all the UI reads."""
    kind: TabKind = importlib.import_module(f"{__name__}.{mode}").TAB
    return kind


def build_ui(playground: Playground, limits: WebLimits) -> gr.Blocks:
    first = playground.default_model
    with gr.Blocks(title="StarCoder Playground") as demo:
        gr.Markdown("# StarCoder Playground\nChat, fill in the middle, or complete code with StarCoder-family models.")
        with gr.Row():
            model = gr.Dropdown(list(playground.slots), value=first, label="Model", scale=1, elem_id="model")
            status = gr.Markdown(model_status(playground, first), elem_id="model-status")
        timer = gr.Timer(1.0, active=_waiting(playground, first))
        params = build_param_panel(playground.slot(first).spec.defaults)
        acknowledged = gr.BrowserState(False, storage_key="playground-share-ack")
        ctx = UiContext(playground, limits, ActiveRuns(), model, params, acknowledged)
        kinds = [tab_of(mode) for mode in playground.modes]  # in the modes' own order
        opens_on = playground.slot(first).spec.opens_on
        with gr.Tabs(selected=opens_on if opens_on in playground.modes else kinds[0].mode) as tabs:
            built = {}
            for kind in kinds:
                with gr.Tab(kind.title, id=kind.mode):
                    built[kind.mode] = kind.build(ctx)
            with gr.Tab("Evaluate", id="evaluate") as evaluate_select:
                evaluate_tab = evaluate.build_evaluate_tab(ctx)
        gr.Markdown(notice(playground.checks is not None), elem_id="notice")

        # Gradio's queue lets as many generations through as all models together serve;
        # each model's slot then keeps its own turn (one at a time for a local model).
        generation: dict[str, Any] = {"concurrency_id": "generate",
                                      "concurrency_limit": playground.generation_concurrency}
        quiet: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}
        views = {}
        for kind in kinds:
            tab = built[kind.mode]
            kind.wire(ctx, tab, generation, quiet)
            tab.stop.click(bind(stop_runs, ctx), None, None, **quiet)
            wire_share(ctx, tab.share, getattr(tab, "weighed", None))  # chat has no candidates
            rerun = bind(kind.rerun, ctx, tab, params=params.names(tab.mode))
            views[kind.mode] = TabView(tab, kind.show_shared, rerun, tab.inputs(ctx), tab.outputs)
        evaluate.wire_evaluate(ctx, evaluate_tab, quiet, evaluate_select)
        restore_outputs = wire_shared_view(ctx, tabs, views, generation)
        model.change(bind(pick_model, playground, status, params), model,
                     [status, *(params.controls[n] for n in params.defaults_names)], api_visibility="private")
        timer.tick(bind(poll_status, playground, status, timer), model, [status, timer], **quiet)
        loaded = demo.load(bind(restore, ctx, tabs, views), None, restore_outputs, **quiet)
        loaded.then(None, None, None, js=LOCK_JS, **quiet)
        for kind in kinds:  # what a tab shows as soon as the page is there (chat: its context meter)
            if kind.on_load is not None:
                loaded.then(*kind.on_load(ctx, built[kind.mode]), **quiet)
        demo.unload(bind(stop_runs, ctx))
    return demo  # type: ignore[no-any-return]  # gradio types Blocks.__exit__ loosely
