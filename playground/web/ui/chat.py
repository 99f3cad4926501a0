"""The Chat tab: the Tech Assistant conversation, its context meter, and the public ``/chat`` endpoint."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError, PromptTooLongError
from playground.modes import Restored
from playground.modes.chat import ChatMode, message_text
from playground.params import from_ui
from playground.record import Generation, tokens_to_json
from playground.web.ui.attribution_view import attribution_html
from playground.web.ui.chat_render import raw, shown
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
)
from playground.web.ui.parts import CHAT_EXAMPLES, stats_line
from playground.web.ui.probability_view import tokens_html


@dataclass
class ChatTab:
    banner: Banner
    chatbot: gr.Chatbot
    meter: gr.HTML
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    clear: gr.Button
    stats: gr.Markdown
    probabilities: gr.HTML
    attribution: gr.HTML
    share: SharePanel
    system_prompt: gr.Textbox
    raw: gr.Textbox
    mode: ChatMode
    examples: gr.Dataset

    @property
    def editable(self) -> list[Any]:
        return [self.message, self.system_prompt]

    @property
    def live_controls(self) -> list[Any]:
        return [self.send, self.regenerate, self.stop, self.clear, self.examples]

    def inputs(self, ctx: UiContext) -> list[Any]:
        """What the public endpoint takes after the message, in order."""
        return [self.chatbot, self.system_prompt, ctx.model, *ctx.params.inputs(self.mode)]

    @property
    def outputs(self) -> list[Any]:
        return [self.chatbot, self.message, self.stats, self.probabilities, self.attribution, self.raw,
                self.share.record]


def build_chat_tab(ctx: UiContext) -> ChatTab:
    banner = build_banner("chat")
    chatbot = gr.Chatbot(label="Tech Assistant", height=420, elem_id="chatbot", sanitize_html=True,
                         feedback_options=None)
    meter = gr.HTML(elem_id="context-meter")
    # One line that grows: Enter sends (Gradio submits on Enter only for lines=1), Shift+Enter breaks a line.
    message = gr.Textbox(label="Message (Enter sends, Shift+Enter for a new line)",
                         placeholder="Ask a programming question…", lines=1, max_lines=12, elem_id="chat-message")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="chat-send", elem_classes=["submit"])
        stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
        regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
        clear = gr.Button("Clear", elem_id="chat-clear")
    stats = gr.Markdown(elem_id="chat-stats")
    probabilities = gr.HTML(elem_id="chat-probs")  # hover only: a chat reply has no editor to branch in
    attribution = gr.HTML(elem_id="chat-attribution")
    share = build_share_panel("chat")
    examples = gr.Examples(CHAT_EXAMPLES, message, label="Try").dataset
    mode = ctx.playground.modes.named("chat")
    assert isinstance(mode, ChatMode)
    prompt = mode.prompt
    with gr.Accordion("Tech Assistant prompt", open=False):
        system_prompt = gr.Textbox(value=prompt.text, lines=12, max_lines=30, elem_id="chat-prompt",
                                   label=f"Few-shot prompt ({prompt.version}); edit to try your own")
    with gr.Accordion("Raw prompt of the last reply", open=False):
        raw = gr.Textbox(lines=6, max_lines=20, interactive=False, elem_id="chat-raw", buttons=["copy"],
                         show_label=False)
    return ChatTab(banner, chatbot, meter, message, send, stop, regenerate, clear, stats, probabilities, attribution,
                   share, system_prompt, raw, mode, examples)


def _conversation(messages: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Chatbot messages as plain role/content text: what the view shows, read back as written."""
    return [{"role": m["role"], "content": raw(message_text(m.get("content")))}
            for m in (messages or []) if m.get("role") in ("user", "assistant")]


def _view(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """Turns as the chat view shows them (``chat_render``)."""
    return [{"role": turn["role"], "content": shown(turn["content"] or "")} for turn in turns]


def _inputs(tab: ChatTab, message: str, history: list[dict[str, str]], system_prompt: str) -> dict[str, Any]:
    inputs: dict[str, Any] = {"message": message, "history": history}
    if system_prompt != tab.mode.prompt.text:
        inputs["system_prompt"] = system_prompt
    return inputs


def send(ctx: UiContext, tab: ChatTab, message: str, history: list[dict[str, Any]] | None, system_prompt: str,
         model: str, values: ParamValues, request: gr.Request) -> Iterator[Updates]:
    """The public ``/chat`` endpoint: one reply to ``message`` after ``history``, streamed."""
    turns = _conversation(history)
    run = ctx.start(tab.mode, model, _inputs(tab, message, turns, system_prompt), values, request)
    asked = _view([*turns, {"role": "user", "content": message}])
    # Every update names the tab's shown outputs (Gradio rebuilds each one an update leaves out), except
    # the message box, cleared once: the user may type the next message meanwhile.
    waiting: Updates = {tab.stats: "Generating…", tab.attribution: "", tab.probabilities: "", tab.raw: run.raw_prompt}

    def replied(text: str) -> list[dict[str, str]]:
        return [*asked, *_view([{"role": "assistant", "content": text}])]

    yield {**waiting, tab.chatbot: replied(""), tab.message: ""}
    for text in ctx.stream(run, request):
        yield {**waiting, tab.chatbot: replied(run.present(text).text)}
    record = finished(run)
    yield {tab.chatbot: replied(record.text), tab.stats: stats_line(record), tab.raw: record.raw_prompt,
           tab.share.record: record.id, tab.attribution: attribution_html(record.attribution, record.text),
           tab.probabilities: _tokens(record)}


def _tokens(record: Generation) -> str:
    return tokens_html(None if record.tokens is None else tokens_to_json(record.tokens), branchable=False)


def regenerate(ctx: UiContext, tab: ChatTab, history: list[dict[str, Any]] | None, system_prompt: str, model: str,
               values: ParamValues, request: gr.Request) -> Iterator[Updates]:
    """A new reply to the last user message: the turns after it are dropped."""
    turns = _conversation(history)
    while turns and turns[-1]["role"] == "assistant":
        turns.pop()
    if not turns:
        raise gr.Error("There is no message to regenerate a reply for yet.", print_exception=False)
    last = turns.pop()["content"]
    yield from send(ctx, tab, last, turns, system_prompt, model, values, request)


def meter(ctx: UiContext, tab: ChatTab, message: str, history: list[dict[str, Any]] | None, system_prompt: str,
          model: str, values: ParamValues) -> Updates:
    """How the context is used: the prompt, the conversation and the reply, before anything is sent."""
    text = message if message and message.strip() else "?"
    inputs = _inputs(tab, text, _conversation(history), system_prompt)
    try:
        plan = ctx.playground.plan(tab.mode.name, model, inputs, from_ui(ctx.params.names(tab.mode), values))
    except PromptTooLongError as exc:
        return {tab.meter: meter_html(None, exc.message)}
    except PlaygroundError:
        return {tab.meter: ""}
    notes = " ".join(plan.prepared.notices)
    return {tab.meter: meter_html(plan.prepared.state) + (f"<div>{html.escape(notes)}</div>" if notes else "")}


def meter_inputs(ctx: UiContext, tab: ChatTab) -> list[Any]:
    return [tab.message, tab.chatbot, tab.system_prompt, ctx.model, *ctx.params.inputs(tab.mode)]


def clear(tab: ChatTab) -> Updates:
    return {tab.chatbot: [], tab.stats: "", tab.attribution: "", tab.raw: "", tab.share.record: None,
            tab.probabilities: ""}


def show_shared(tab: ChatTab, restored: Restored, record: Generation, candidate: int = 0) -> Updates:
    # autoscroll off: a shared conversation opens at its start, to be read from the top
    opened = gr.update(value=_view(restored.inputs["history"]), autoscroll=False)
    updates: Updates = {tab.chatbot: opened, tab.stats: stats_line(record),
                        tab.raw: record.raw_prompt, tab.message: restored.inputs["message"],
                        tab.attribution: attribution_html(record.attribution, record.text),
                        tab.probabilities: _tokens(record)}
    if "system_prompt" in restored.inputs:
        updates[tab.system_prompt] = restored.inputs["system_prompt"]
    return updates


def wire_chat(ctx: UiContext, tab: ChatTab, generation: dict[str, Any], quiet: dict[str, Any]) -> None:
    inputs, outputs, params = tab.inputs(ctx), tab.outputs, ctx.params.names(tab.mode)
    answer = bind(send, ctx, tab, params=params)
    sent = [tab.send.click(answer, [tab.message, *inputs], outputs, api_name="chat", **generation),
            tab.message.submit(answer, [tab.message, *inputs], outputs, api_visibility="private", **generation)]
    tab.regenerate.click(bind(regenerate, ctx, tab, params=params), inputs, outputs, api_visibility="private",
                         **generation)
    tab.clear.click(bind(clear, tab), None, [tab.chatbot, tab.stats, tab.attribution, tab.raw, tab.share.record,
                                             tab.probabilities], api_visibility="private")
    measure = bind(meter, ctx, tab, params=params)
    for event in sent:
        event.then(measure, meter_inputs(ctx, tab), tab.meter, **quiet)
    tab.message.input(measure, meter_inputs(ctx, tab), tab.meter, trigger_mode="always_last", **quiet)


def measure_on_load(ctx: UiContext, tab: ChatTab) -> tuple[Callable[..., Any], list[Any], Any]:
    """The context meter as soon as the page is there."""
    return bind(meter, ctx, tab, params=ctx.params.names(tab.mode)), meter_inputs(ctx, tab), tab.meter


TAB = TabKind("chat", "Chat", build_chat_tab, wire_chat, show_shared, regenerate, measure_on_load)


def meter_html(breakdown: dict[str, int] | None, warning: str | None = None) -> str:
    if warning:
        return f'<div class="ctx-meter ctx-over" role="status">{html.escape(warning)}</div>'
    if not breakdown:
        return ""
    context = max(breakdown["context"], 1)
    used = breakdown["prompt"] + breakdown["history"] + breakdown["reply"]
    bar = "".join(
        f'<span class="ctx-{name}" style="width:{100 * breakdown[name] / context:.1f}%"></span>'
        for name in ("prompt", "history", "reply")
    )
    return (
        f'<div class="ctx-meter" role="status"><div class="ctx-bar">{bar}</div>'
        f"Context: {breakdown['prompt']} prompt + {breakdown['history']} conversation + "
        f"{breakdown['reply']} reply = {used} of {context} tokens ({max(context - used, 0)} free)</div>"
    )
