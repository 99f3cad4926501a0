"""Opening a share link (``/?share=ID``): the tab of its mode, filled in and read-only, with a banner.

The mode restores the record (``Mode.restore``); each tab shows the result
in its own widgets. "Edit a copy" unlocks the inputs; "Re-run" does that and
runs the same mode again with the same settings.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import gradio as gr

from playground.errors import PlaygroundError
from playground.modes import Restored
from playground.record import Generation
from playground.web.ui.common import Banner, UiContext, Updates, bind
from playground.web.ui.parts import share_banner


class Tab(Protocol):
    banner: Banner

    @property
    def editable(self) -> list[Any]: ...

    @property
    def live_controls(self) -> list[Any]: ...  # what runs or clears the tab: hidden while a share is shown


@dataclass
class TabView:
    """One tab as the shared view needs it: the tab, how it shows a restored record, how it re-runs."""

    tab: Tab
    show: Callable[[Any, Restored, Generation, int], Updates]  # the last: which candidate to show
    rerun: Callable[..., Any]  # the tab's generation handler, already bound
    rerun_inputs: list[Any]
    rerun_outputs: list[Any]


# The code editors ignore an interactive=False update once built, so the shared view locks them in the page
# itself (the result boxes were built read-only), and "Edit a copy" unlocks them.
LOCK_JS = """() => { if (new URLSearchParams(location.search).has('share'))
  document.querySelectorAll('.input-editor .cm-content')
    .forEach((e) => e.setAttribute('contenteditable', 'false')); }"""
UNLOCK_JS = """() => document.querySelectorAll('.input-editor .cm-content')
  .forEach((e) => e.setAttribute('contenteditable', 'true'))"""


def restore(ctx: UiContext, tabs: gr.Tabs, views: Mapping[str, TabView], request: gr.Request) -> Updates:
    share_id = request.query_params.get("share") if request else None
    if not share_id:
        return {tabs: gr.skip()}  # an empty dict would read as one missing value
    try:
        record = ctx.playground.open_share(share_id)
        mode = ctx.playground.modes.named(record.mode)
    except PlaygroundError as exc:
        gr.Warning(html.escape(exc.message))
        return {tabs: gr.skip()}
    view = views[mode.name]
    restored = mode.restore(record)
    candidate = _candidate(request.query_params.get("candidate"), record)
    updates: Updates = {tabs: gr.Tabs(selected=mode.name)}
    # A shared view is read-only: the inputs are locked, and what would run or clear the tab (its buttons,
    # Stop, Clear, the examples) is hidden; "Edit a copy" brings them back.
    for each in views.values():
        updates.update({c: gr.update(interactive=False) for c in each.tab.editable})
        updates.update({b: gr.update(visible=False) for b in each.tab.live_controls})
    updates.update(_params(ctx, record, restored))
    updates.update(view.show(view.tab, restored, record, candidate))
    served = record.model in ctx.playground.slots
    updates.update({view.tab.banner.group: gr.Group(visible=True),
                    view.tab.banner.text: share_banner(record, served=served)})
    return updates


def _candidate(raw: str | None, record: Generation) -> int:
    """The candidate a link opens on: its number when the generation has it, else the best (0)."""
    count = len(record.candidates or [])
    return int(raw) if raw and raw.isascii() and raw.isdigit() and int(raw) < count else 0


def _params(ctx: UiContext, record: Generation, restored: Restored) -> Updates:
    updates = ctx.params.show(restored.params)
    if record.model in ctx.playground.slots:
        updates[ctx.model] = record.model
    return updates


def edit_copy(views: Mapping[str, TabView]) -> Updates:
    updates: Updates = {}
    for view in views.values():
        updates.update({c: gr.update(interactive=True) for c in view.tab.editable})
        updates.update({b: gr.update(visible=True) for b in view.tab.live_controls})
        updates[view.tab.banner.group] = gr.Group(visible=False)
    return updates


def restore_outputs(ctx: UiContext, tabs: gr.Tabs, views: Mapping[str, TabView]) -> list[Any]:
    """Every component ``restore`` may update (Gradio needs them listed)."""
    shown = {c for view in views.values() for c in view.rerun_outputs + view.tab.editable + view.tab.live_controls}
    banners = [c for view in views.values() for c in (view.tab.banner.group, view.tab.banner.text)]
    return [tabs, ctx.model, *ctx.params.controls.values(), *shown, *banners]


def wire_shared_view(ctx: UiContext, tabs: gr.Tabs, views: Mapping[str, TabView],
                     generation: dict[str, Any]) -> Any:
    unlocked = [c for view in views.values() for c in (*view.tab.editable, *view.tab.live_controls,
                                                       view.tab.banner.group)]
    for view in views.values():
        banner = view.tab.banner
        banner.copy.click(bind(edit_copy, views), None, unlocked, api_visibility="private").then(
            None, None, None, js=UNLOCK_JS, api_visibility="private")
        banner.rerun.click(bind(edit_copy, views), None, unlocked, api_visibility="private").then(
            None, None, None, js=UNLOCK_JS, api_visibility="private").then(
            view.rerun, view.rerun_inputs, view.rerun_outputs, api_visibility="private", **generation)
    return restore_outputs(ctx, tabs, views)
