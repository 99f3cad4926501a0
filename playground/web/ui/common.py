"""What the tabs share: the parameter panel, the share panel, the shared-view banner, and running a generation.

Handlers are module-level functions that return ``{component: update}``
mappings; ``bind`` gives them their tab or context without a closure.
"""

from __future__ import annotations

import html
import inspect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError
from playground.modes import Mode, Restored
from playground.params import PARAMS, GenerationParams, Param, from_ui, ui_value
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.limits import WebLimits
from playground.web.shares import share_links
from playground.web.streaming import coalesce
from playground.web.ui.parts import SHARE_WARNING

Updates = dict[Any, Any]
ParamValues = list[Any]  # a panel's control values, in the order of its ``names``


def bind(handler: Callable[..., Any], *bound: Any, params: Sequence[str] = ()) -> Callable[..., Any]:
    """``handler`` with its first arguments fixed, keeping what Gradio reads from a signature:
    whether it streams (a generator function), the API's parameter names, and where gr.Request goes.

    With ``params``, the handler's ``values`` argument is spread into one API parameter per name (as
    gradio_client calls them), and the handler gets them back as one list in that order."""
    signature = inspect.signature(handler, eval_str=True)
    rest = list(signature.parameters.values())[len(bound):]
    if params:
        at = [p.name for p in rest].index("values")
        spread = [inspect.Parameter(PARAMS[name].api_name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Any)
                  for name in params]
        rest = [*rest[:at], *spread, *rest[at + 1:]]
    outer = signature.replace(parameters=rest)

    def packed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        given = outer.bind(*args, **kwargs).arguments
        if params:
            given["values"] = [given.pop(PARAMS[name].api_name) for name in params]
        return given

    call: Callable[..., Any]
    if inspect.isgeneratorfunction(handler):
        def call(*args: Any, **kwargs: Any) -> Any:
            yield from handler(*bound, **packed(args, kwargs))
    else:
        def call(*args: Any, **kwargs: Any) -> Any:
            return handler(*bound, **packed(args, kwargs))
    call.__signature__ = outer  # type: ignore[attr-defined]
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
    """One control per declared parameter, by name, in declaration order."""

    controls: dict[str, Any]

    def names(self, mode: Mode) -> list[str]:
        """The parameters a mode's endpoint takes, in order: candidates only where the mode gives them, and
        a mode's own settings only on that mode's."""
        return [name for name in self.controls if (mode.candidates or not PARAMS[name].candidates)
                and (not PARAMS[name].own or name in mode.own_params)]

    def inputs(self, mode: Mode) -> list[Any]:
        return [self.controls[name] for name in self.names(mode)]

    @property
    def defaults_names(self) -> list[str]:
        """The controls a model's own defaults set when it is picked: the sliders of the sampling knobs."""
        return [name for name, p in PARAMS.items() if p.control == "slider" and not p.candidates]

    def show(self, params: GenerationParams, names: Sequence[str] | None = None) -> Updates:
        """Updates that show ``params`` in the controls (all, or ``names``)."""
        return {self.controls[name]: ui_value(PARAMS[name], getattr(params, name))
                for name in (self.controls if names is None else names)}


def _control(param: Param, value: Any) -> Any:
    elem_id = f"param-{param.api_name}"  # as gradio_client names it
    if param.control == "lines":
        return gr.Textbox(value, label=param.help, lines=2, elem_id=elem_id)
    if param.control == "seed":  # a Textbox, not a Number: an empty Number reads as 0, a fixed seed
        return gr.Textbox(value, label=param.help, elem_id=elem_id)
    if param.control == "toggle":
        return gr.Checkbox(value, label=param.label, elem_id=elem_id)
    if param.control == "checkbox":
        return gr.Checkbox(value, label=param.label, info=param.help, elem_id=elem_id)
    assert param.bound is not None
    return gr.Slider(param.bound.minimum, param.bound.maximum, value=value, step=param.bound.step,
                     label=param.label or param.name, info=param.help, elem_id=elem_id)


def build_param_panel(defaults: GenerationParams) -> ParamPanel:
    """Toggles above the accordion; the sampling sliders in one row, the rest in the next."""
    values = {name: ui_value(param, getattr(defaults, name)) for name, param in PARAMS.items()}
    controls = {name: _control(p, values[name]) for name, p in PARAMS.items() if p.control == "toggle"}
    with gr.Accordion("Parameters", open=False):
        with gr.Row():
            controls.update({name: _control(p, values[name]) for name, p in PARAMS.items()
                             if p.control == "slider" and not p.candidates})
        with gr.Row():
            controls.update({name: _control(p, values[name]) for name, p in PARAMS.items() if name not in controls})
    return ParamPanel({name: controls[name] for name in PARAMS})


@dataclass(frozen=True)
class TabKind:
    """A mode's tab, as the Blocks find it: how to build, wire and fill it, and which handler re-runs it."""

    mode: str  # the mode's name, which is also the tab's id
    title: str
    build: Callable[[UiContext], Any]
    wire: Callable[[UiContext, Any, dict[str, Any], dict[str, Any]], None]  # (ctx, tab, generation, quiet)
    show_shared: Callable[[Any, Restored, Generation, int], Updates]  # the last: which candidate to show
    rerun: Callable[..., Iterator[Updates]]  # (ctx, tab, *inputs, values, request), bound by the Blocks
    # (handler, inputs, outputs) to run once the page has loaded (after a shared generation is restored)
    on_load: Callable[[UiContext, Any], tuple[Callable[..., Any], list[Any], Any]] | None = None


@dataclass
class UiContext:
    """What every tab's handlers need: the service, the limits, the live runs and the shared widgets."""

    playground: Playground
    limits: WebLimits  # the same limiters as REST's
    active: ActiveRuns
    model: gr.Dropdown
    params: ParamPanel
    acknowledged: gr.BrowserState

    def start(self, mode: Mode, model_id: str, inputs: dict[str, Any], values: ParamValues,
              request: gr.Request) -> Run:
        """A run of ``mode``; ``values`` are the panel's controls for that mode, in its order."""
        try:
            if request.request is not None:  # None only for calls made inside the server itself
                self.limits.generations.check(request.request)
            run = self.playground.start(mode.name, model_id, inputs, from_ui(self.params.names(mode), values))
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
                  pick: Callable[..., Any], picked: list[Any], generation: dict[str, Any]) -> None:
    """A tab's probability and candidate views: a clicked alternative puts its branch into the tab's editor
    (``picked[0]``) and runs ``run`` (the tab's bound handler) again; a candidate's Apply updates ``picked``
    (the editor and every panel), its Share then shares the generation opened on it."""
    tab.probabilities.branch(bind(branch, tab), tab.weighed, picked[0], api_visibility="private").success(
        run, tab.inputs(ctx), tab.outputs, api_visibility="private", **generation)
    chosen = tab.candidates.pick(bind(pick, tab), tab.weighed, [*picked, tab.share.candidate],
                                 api_visibility="private")
    chosen.success(bind(share_candidate, ctx, tab.share), [tab.share.record, tab.share.candidate, ctx.acknowledged],
                   share_outputs(ctx, tab.share), api_visibility="private")


def share_outputs(ctx: UiContext, panel: SharePanel) -> list[Any]:
    return [panel.link, panel.confirm_group, panel.delete, ctx.acknowledged]


def _shown_candidate(weighed: dict[str, Any] | None) -> int | None:
    return (weighed or {}).get("shown") or None


def wire_share(ctx: UiContext, panel: SharePanel, weighed: gr.State | None = None) -> None:
    """The Share button shares the generation as shown: the candidate last applied (``weighed["shown"]``),
    else its best."""
    outputs = share_outputs(ctx, panel)
    chosen = (panel.button.click(_shown_candidate, weighed, panel.candidate, api_visibility="private")
              if weighed is not None else panel.button.click(lambda: None, None, panel.candidate,
                                                             api_visibility="private"))
    chosen.then(bind(share_click, ctx, panel), [panel.record, panel.candidate, ctx.acknowledged], outputs,
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
