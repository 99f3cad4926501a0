"""What the tabs share: the parameter panel, the share panel, the shared-view banner, and running a generation.

Handlers are module-level functions that return ``{component: update}``
mappings; ``bind`` gives them their tab or context without a closure.
"""

from __future__ import annotations

import html
import inspect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError
from playground.params import BOUNDS, MAX_STOP_SEQUENCES
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.limits import WebLimits
from playground.web.shares import share_links
from playground.web.streaming import coalesce
from playground.web.ui.parts import SHARE_WARNING

PARAM_NAMES = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
Updates = dict[Any, Any]


def bind(handler: Callable[..., Any], *bound: Any) -> Callable[..., Any]:
    """``handler`` with its first arguments fixed, keeping what Gradio reads from a signature:
    whether it streams (a generator function), the API's parameter names, and where gr.Request goes."""
    signature = inspect.signature(handler, eval_str=True)
    rest = list(signature.parameters.values())[len(bound):]
    call: Callable[..., Any]
    if inspect.isgeneratorfunction(handler):
        def call(*args: Any, **kwargs: Any) -> Any:
            yield from handler(*bound, *args, **kwargs)
    else:
        def call(*args: Any, **kwargs: Any) -> Any:
            return handler(*bound, *args, **kwargs)
    call.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in rest}
    call.__name__ = call.__qualname__ = handler.__name__
    return call


def user_error(exc: PlaygroundError, request: gr.Request | None = None) -> gr.Error:
    """The error as Gradio shows it. A browser toast renders HTML, so there the message is escaped
    (or "<FILL_HERE>" would vanish); gradio_client callers (``x-gradio-user: api``) get the text as is."""
    from_api = request is not None and request.headers.get("x-gradio-user") == "api"
    return gr.Error(exc.message if from_api else html.escape(exc.message), print_exception=False)


class ActiveRuns:
    """Runs per browser session, so Stop and a closed tab reach the right generation."""

    def __init__(self) -> None:
        self._runs: dict[str, set[Run]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, session: str, run: Run) -> None:
        with self._lock:
            self._runs[session].add(run)

    def discard(self, session: str, run: Run) -> None:
        with self._lock:
            runs = self._runs.get(session)  # .get: a finished session must not leave an empty entry behind
            if runs is not None:
                runs.discard(run)
                if not runs:
                    del self._runs[session]

    def stop(self, session: str) -> None:
        with self._lock:
            runs = list(self._runs.pop(session, ()))
        for run in runs:
            run.stop()


@dataclass
class ParamPanel:
    sliders: dict[str, gr.Slider]
    stop: gr.Textbox
    seed: gr.Textbox
    probabilities: gr.Checkbox
    candidates: gr.Slider  # fill and complete only: chat gives one reply

    @property
    def inputs(self) -> list[Any]:
        """In the order the public endpoints take them, after the model (fill and complete add candidates)."""
        return [*self.sliders.values(), self.stop, self.seed, self.probabilities]


def build_param_panel(defaults: list[Any]) -> ParamPanel:
    probabilities = gr.Checkbox(False, label="Show probabilities: colour each token by how likely the model found "
                                "it, with its alternatives", elem_id="param-probabilities")
    with gr.Accordion("Parameters", open=False):
        with gr.Row():
            sliders = {
                name: gr.Slider(BOUNDS[name].minimum, BOUNDS[name].maximum, value=value, step=BOUNDS[name].step,
                                label=name, info=BOUNDS[name].help, elem_id=f"param-{name}")
                for name, value in zip(PARAM_NAMES, defaults, strict=True)
            }
        with gr.Row():
            stop = gr.Textbox(label=f"Stop sequences (one per line, up to {MAX_STOP_SEQUENCES}; \\n for a newline)",
                              lines=2, elem_id="param-stop")
            # A Textbox, not a Number: an empty Number reads as 0, a fixed seed.
            seed = gr.Textbox(label="Seed (empty: random; the one used is shown after each run)", value="",
                              elem_id="param-seed")
            bound = BOUNDS["n"]
            candidates = gr.Slider(bound.minimum, bound.maximum, value=1, step=bound.step,
                                   label="Candidates (fill and complete)", info=bound.help, elem_id="param-n")
    return ParamPanel(sliders, stop, seed, probabilities, candidates)


def params_from(max_new_tokens: Any, temperature: Any, top_p: Any, top_k: Any, repetition_penalty: Any,
                stop: str | None, seed: Any, probabilities: Any = False, candidates: Any = 1) -> dict[str, Any]:
    """Widget values → raw params; GenerationParams.parse validates them in the service.
    Showing probabilities asks for as many alternatives as the bounds allow."""
    stops = [line.replace("\\n", "\n").replace("\\t", "\t") for line in (stop or "").splitlines() if line]
    seed_text = "" if seed is None else str(seed).strip()
    return {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k,
            "repetition_penalty": repetition_penalty, "stop": stops, "seed": seed_text or None,
            "logprobs": int(BOUNDS["logprobs"].maximum) if probabilities else 0, "n": candidates}


def stop_text(stops: tuple[str, ...]) -> str:
    """Stop sequences as the stop box shows them: one a line, newlines and tabs escaped."""
    return "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in stops)


@dataclass
class UiContext:
    """What every tab's handlers need: the service, the limits, the live runs and the shared widgets."""

    playground: Playground
    limits: WebLimits  # the same limiters as REST's
    active: ActiveRuns
    model: gr.Dropdown
    params: ParamPanel
    acknowledged: gr.BrowserState

    def start(self, mode: str, model_id: str, inputs: dict[str, Any], params: dict[str, Any],
              request: gr.Request) -> Run:
        try:
            if request.request is not None:  # None only for calls made inside the server itself
                self.limits.generations.check(request.request)
            run = self.playground.start(mode, model_id, inputs, params)
        except PlaygroundError as exc:
            raise user_error(exc, request) from None
        self.active.add(request.session_hash or "", run)
        return run

    def stream(self, run: Run, request: gr.Request) -> Iterator[str]:
        """Raw text so far, coalesced to the browser's pace; errors become toasts."""
        try:
            yield from coalesce(run)
        except PlaygroundError as exc:
            raise user_error(exc, request) from None
        finally:
            self.active.discard(request.session_hash or "", run)


def finished(run: Run) -> Generation:
    assert run.record is not None, "a run that streamed to its end has a record"
    return run.record


def stop_runs(ctx: UiContext, request: gr.Request) -> None:
    ctx.active.stop(request.session_hash or "")


# ---------------------------------------------------------------- sharing


@dataclass
class SharePanel:
    button: gr.Button
    link: gr.Textbox
    confirm_group: gr.Group
    confirm: gr.Button
    delete: gr.Markdown
    record: gr.State  # the id of the last finished generation in this tab
    candidate: gr.State  # the candidate a link should open on (None: the best), when there are several


def build_share_panel(mode: str) -> SharePanel:
    with gr.Row():
        button = gr.Button("Share", size="sm", elem_id=f"{mode}-share")
        link = gr.Textbox(label="Share link", interactive=False, visible=False, buttons=["copy"],
                          elem_id=f"{mode}-share-link", scale=3)
    with gr.Group(visible=False) as confirm_group:
        gr.Markdown(SHARE_WARNING)
        confirm = gr.Button("Create the public link", variant="primary", size="sm", elem_id=f"{mode}-share-confirm")
    delete = gr.Markdown(visible=False, elem_id=f"{mode}-share-delete")
    return SharePanel(button, link, confirm_group, confirm, delete, gr.State(None), gr.State(None))


def share_confirm(ctx: UiContext, panel: SharePanel, record_id: str | None, candidate: int | None,
                  request: gr.Request) -> Updates:
    try:
        if request.request is not None:
            ctx.limits.share_creations.check(request.request)
        created = ctx.playground.share(record_id or "")
    except PlaygroundError as exc:
        raise user_error(exc, request) from None
    url, delete_url = share_links(ctx.playground.settings, request.request, created.id, created.delete_token or "")
    if candidate:  # the same generation, opened on another of its candidates
        url += f"?candidate={int(candidate)}"
    note = (f"Anyone with the link can open it. To remove it later, keep this delete link "
            f"(shown only now): [{html.escape(delete_url)}]({delete_url})" if created.is_new else
            "This generation was shared before: this is the same link. Its delete link was shown then.")
    return {panel.link: gr.Textbox(value=url, visible=True), panel.confirm_group: gr.Group(visible=False),
            panel.delete: gr.Markdown(note, visible=True), ctx.acknowledged: True}


def share_click(ctx: UiContext, panel: SharePanel, record_id: str | None, candidate: int | None,
                acknowledged: bool, request: gr.Request) -> Updates:
    if not record_id:
        raise gr.Error("Generate something first; then it can be shared.", print_exception=False)
    if not acknowledged:  # before a user's first share, say plainly that the link is public
        return {panel.confirm_group: gr.Group(visible=True)}
    return share_confirm(ctx, panel, record_id, candidate, request)


def share_candidate(ctx: UiContext, panel: SharePanel, record_id: str | None, candidate: int | None,
                    acknowledged: bool, request: gr.Request) -> Updates:
    """After a candidate's button: share when it was Share (the candidate is set), else nothing."""
    if candidate is None:
        return {panel.link: gr.skip()}
    return share_click(ctx, panel, record_id, candidate, acknowledged, request)


def wire_weighing(ctx: UiContext, tab: Any, run: Callable[..., Any], branch: Callable[..., Any],
                  pick: Callable[..., Any], editor: Any, picked: list[Any], generation: dict[str, Any]) -> None:
    """A tab's probability and candidate views: a clicked alternative puts its branch into ``editor`` and
    runs ``run`` again; a candidate's Apply updates ``picked``, its Share then shares the generation."""
    tab.probabilities.branch(bind(branch, tab), tab.weighed, editor, api_visibility="private").success(
        bind(run, ctx, tab), tab.inputs(ctx), tab.outputs, api_visibility="private", **generation)
    chosen = tab.candidates.pick(bind(pick, tab), tab.weighed, [*picked, tab.share.candidate, tab.candidates],
                                 api_visibility="private")
    chosen.success(bind(share_candidate, ctx, tab.share), [tab.share.record, tab.share.candidate, ctx.acknowledged],
                   share_outputs(ctx, tab.share), api_visibility="private")


def share_outputs(ctx: UiContext, panel: SharePanel) -> list[Any]:
    return [panel.link, panel.confirm_group, panel.delete, ctx.acknowledged]


def wire_share(ctx: UiContext, panel: SharePanel) -> None:
    outputs = share_outputs(ctx, panel)
    # The Share button shares the generation as shown: its best candidate.
    panel.button.click(lambda: None, None, panel.candidate, api_visibility="private").then(
        bind(share_click, ctx, panel), [panel.record, panel.candidate, ctx.acknowledged], outputs,
        api_visibility="private")
    panel.confirm.click(bind(share_confirm, ctx, panel), [panel.record, panel.candidate], outputs,
                        api_visibility="private")


# ---------------------------------------------------------------- the shared view


@dataclass
class Banner:
    """Shown above a tab that displays a shared generation, read-only."""

    group: gr.Group
    text: gr.Markdown
    rerun: gr.Button
    copy: gr.Button


def build_banner(mode: str) -> Banner:
    with gr.Group(visible=False) as group:
        text = gr.Markdown(elem_id=f"{mode}-shared-banner")
        with gr.Row():
            rerun = gr.Button("Re-run with the same settings", size="sm", elem_id=f"{mode}-rerun")
            copy = gr.Button("Edit a copy", size="sm", elem_id=f"{mode}-edit-copy")
    return Banner(group, text, rerun, copy)
