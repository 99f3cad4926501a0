"""The Gradio Blocks: chat, fill and complete tabs over one model selector and parameter panel.

Handlers are thin: they collect widget values, call ``Playground.start``, and
stream the run through ``coalesce``. Stop flags the run's cancel event, so the
model itself stops; it is not merely the page that stops listening. A page
opened as ``/?share=ID`` restores that generation read-only.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError, PromptTooLongError
from playground.params import BOUNDS, MAX_STOP_SEQUENCES
from playground.prompting.chat import present_reply
from playground.prompting.fill import FILL_MARKER
from playground.service import Playground, Run
from playground.web.limits import RateLimiter
from playground.web.shares import share_links
from playground.web.streaming import coalesce
from playground.web.ui_parts import (
    CHAT_EXAMPLES,
    COMPLETE_EXAMPLE,
    COMPLETE_EXAMPLES,
    FILL_EXAMPLE,
    FILL_EXAMPLES,
    LANGUAGES,
    NOTICE,
    SHARE_WARNING,
    SUBMIT_SHORTCUT_JS,
    ActiveRuns,
    VerbatimCode,
    history_messages,
    history_pairs,
    language_for,
    mark_middle,
    meter_html,
    params_from,
    share_banner,
    stats_line,
    text_of,
)

PARAM_NAMES = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")


def _user_error(exc: PlaygroundError) -> gr.Error:
    # Toasts render HTML: escape, or "<FILL_HERE>" in a message disappears.
    return gr.Error(html.escape(exc.message), print_exception=False)


def build_ui(playground: Playground, generations: RateLimiter) -> gr.Blocks:
    active = ActiveRuns()
    model_ids = list(playground.slots)
    default_prompt = playground.chat_prompt.text

    def spec_defaults(model_id: str) -> list[Any]:
        d = playground.slot(model_id).spec.defaults
        return [d.max_new_tokens, d.temperature, d.top_p, d.top_k, d.repetition_penalty]

    def model_status(model_id: str) -> str:
        slot = playground.slot(model_id)
        info, spec = slot.info(), slot.spec
        licence = f"[{spec.license}]({spec.license_url})" if spec.license_url else spec.license
        if not info.loaded:
            state = f"⏳ {slot.progress.message}" if not slot.progress.error else f"❌ {slot.progress.error}"
            return f"**{spec.id}** — {html.escape(state)}"
        where = info.endpoint or (info.placement or {}).get("summary", "")
        return f"**{spec.id}** · {info.backend} · context {info.context_length} · {where} · licence {licence}"

    with gr.Blocks(title="StarCoder Playground") as demo:
        gr.Markdown("# StarCoder Playground\nChat, fill in the middle, or complete code with StarCoder-family models.")
        with gr.Row():
            model = gr.Dropdown(model_ids, value=model_ids[0], label="Model", scale=1, elem_id="model")
            status = gr.Markdown(model_status(model_ids[0]), elem_id="model-status")
        timer = gr.Timer(1.0, active=not playground.slot(model_ids[0]).info().loaded)
        with gr.Accordion("Parameters", open=False):
            with gr.Row():
                sliders = [
                    gr.Slider(BOUNDS[n].minimum, BOUNDS[n].maximum, value=v, step=BOUNDS[n].step, label=n,
                              info=BOUNDS[n].help, elem_id=f"param-{n}")
                    for n, v in zip(PARAM_NAMES, spec_defaults(model_ids[0]), strict=True)
                ]
            with gr.Row():
                stop_text = gr.Textbox(label=f"Stop sequences (one per line, up to {MAX_STOP_SEQUENCES}; \\n for a newline)",
                                       lines=2, elem_id="param-stop")
                # A Textbox, not a Number: an empty Number reads as 0, a fixed seed.
                seed = gr.Textbox(label="Seed (empty: random; the one used is shown after each run)", value="",
                                  elem_id="param-seed")
        param_inputs = [*sliders, stop_text, seed]
        acknowledged = gr.BrowserState(False, storage_key="playground-share-ack")
        panels: dict[str, dict[str, Any]] = {}

        def share_panel(mode: str) -> dict[str, Any]:
            with gr.Row():
                button = gr.Button("Share", size="sm", elem_id=f"{mode}-share")
                link = gr.Textbox(label="Share link", interactive=False, visible=False, buttons=["copy"],
                                  elem_id=f"{mode}-share-link", scale=3)
            with gr.Group(visible=False) as confirm_group:
                gr.Markdown(SHARE_WARNING)
                confirm = gr.Button("Create the public link", variant="primary", size="sm", elem_id=f"{mode}-share-confirm")
            delete_note = gr.Markdown(visible=False, elem_id=f"{mode}-share-delete")
            panels[mode] = {"button": button, "link": link, "confirm_group": confirm_group, "confirm": confirm,
                            "delete": delete_note, "record": gr.State(None)}
            return panels[mode]

        def banner(mode: str) -> dict[str, Any]:
            with gr.Group(visible=False) as group:
                text = gr.Markdown(elem_id=f"{mode}-shared-banner")
                with gr.Row():
                    rerun = gr.Button("Re-run with the same settings", size="sm", elem_id=f"{mode}-rerun")
                    copy = gr.Button("Edit a copy", size="sm", elem_id=f"{mode}-edit-copy")
            return {"group": group, "text": text, "rerun": rerun, "copy": copy}

        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Chat", id="chat"):
                chat_banner = banner("chat")
                chatbot = gr.Chatbot(label="Tech Assistant", height=420, elem_id="chatbot",
                                     sanitize_html=True, feedback_options=None)
                meter = gr.HTML(elem_id="context-meter")
                message = gr.Textbox(label="Message (Ctrl/Cmd+Enter sends)", placeholder="Ask a programming question…",
                                     lines=2, elem_id="chat-message")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="chat-send", elem_classes=["submit"])
                    chat_stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                    regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
                    clear = gr.Button("Clear", elem_id="chat-clear")
                chat_stats = gr.Markdown(elem_id="chat-stats")
                chat_share = share_panel("chat")
                gr.Examples(CHAT_EXAMPLES, message, label="Try")
                with gr.Accordion("Tech Assistant prompt", open=False):
                    system_prompt = gr.Textbox(value=default_prompt, lines=12, max_lines=30, elem_id="chat-prompt",
                                               label=f"Few-shot prompt ({playground.chat_prompt.version}); edit to try your own")
                with gr.Accordion("Raw prompt of the last reply", open=False):
                    chat_raw = gr.Textbox(lines=6, max_lines=20, interactive=False, elem_id="chat-raw",
                                          buttons=["copy"], show_label=False)

            with gr.Tab("Fill in the middle", id="fill"):
                fill_banner = banner("fill")
                with gr.Row():
                    filename = gr.Textbox(label="Filename (optional; used as <filename> metadata)",
                                          placeholder="src/fib.py", elem_id="fill-filename")
                    language = gr.Dropdown(LANGUAGES, value="python", label="Highlighting")
                code_in = VerbatimCode(FILL_EXAMPLE, language="python", interactive=True, lines=12,
                                       label=f"Code with one {FILL_MARKER} hole (Ctrl/Cmd+Enter fills)", elem_id="fill-code")
                with gr.Row():
                    fill_go = gr.Button("Fill", variant="primary", elem_id="fill-run", elem_classes=["submit"])
                    fill_stop = gr.Button("Stop", variant="stop", elem_id="fill-stop")
                fill_mark = gr.Markdown(elem_id="fill-mark")
                code_out = VerbatimCode(language="python", interactive=False, lines=12, label="Result",
                                        elem_id="fill-result")
                middle_out = VerbatimCode(language="python", interactive=False, lines=4,
                                          label="Generated middle", elem_id="fill-middle")
                fill_stats = gr.Markdown(elem_id="fill-stats")
                fill_share = share_panel("fill")
                gr.Examples(FILL_EXAMPLES, [code_in, filename], label="Try")
                with gr.Accordion("Raw prompt", open=False):
                    fill_raw = gr.Textbox(lines=8, interactive=False, elem_id="fill-raw", buttons=["copy"],
                                          label="Exactly what the model was given")

            with gr.Tab("Complete", id="complete"):
                complete_banner = banner("complete")
                prompt_in = VerbatimCode(COMPLETE_EXAMPLE, language="python", interactive=True, lines=10,
                                         label="Prompt (Ctrl/Cmd+Enter completes)", elem_id="complete-prompt")
                with gr.Row():
                    complete_go = gr.Button("Complete", variant="primary", elem_id="complete-run", elem_classes=["submit"])
                    complete_stop = gr.Button("Stop", variant="stop", elem_id="complete-stop")
                complete_out = VerbatimCode(language="python", interactive=False, lines=12,
                                            label="Prompt + continuation", elem_id="complete-result")
                complete_stats = gr.Markdown(elem_id="complete-stats")
                complete_share = share_panel("complete")
                gr.Examples(COMPLETE_EXAMPLES, prompt_in, label="Try")
        gr.Markdown(NOTICE, elem_id="notice")

        # ------------------------------------------------------------ generation

        def start(mode: str, model_id: str, inputs: dict[str, Any], values: tuple[Any, ...],
                  request: gr.Request) -> Run:
            try:
                generations.check(request.request)
                run = playground.start(mode, model_id, inputs, params_from(*values))
            except PlaygroundError as exc:
                raise _user_error(exc) from None
            active.add(request.session_hash or "", run)
            return run

        def stream(run: Run, request: gr.Request) -> Iterator[str]:
            try:
                yield from coalesce(run)
            except PlaygroundError as exc:
                raise _user_error(exc) from None
            finally:
                active.discard(request.session_hash or "", run)

        def chat_send(text: str, messages: list[dict[str, Any]], prompt_text: str, model_id: str, max_new: Any,
                      temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop: str, seed_value: Any,
                      request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop, seed_value)
            history = history_pairs(messages)
            inputs: dict[str, Any] = {"message": text, "history": history}
            if prompt_text != default_prompt:
                inputs["system_prompt"] = prompt_text
            run = start("chat", model_id, inputs, values, request)
            shown = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            yield shown, "", "Generating…", gr.skip(), gr.skip()
            for raw in stream(run, request):
                shown[-1] = {"role": "assistant", "content": present_reply(raw)}
                yield shown, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            record = run.record
            shown[-1] = {"role": "assistant", "content": record.text}
            yield shown, gr.skip(), stats_line(record), record.raw_prompt, record.id

        def chat_regenerate(messages: list[dict[str, Any]], prompt_text: str, model_id: str, max_new: Any,
                            temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop: str, seed_value: Any,
                            request: gr.Request) -> Iterator[tuple[Any, ...]]:
            params = (max_new, temperature, top_p, top_k, repetition, stop, seed_value)
            history = history_pairs(messages)
            while history and history[-1]["role"] == "assistant":
                history.pop()
            if not history:
                raise gr.Error("There is no message to regenerate a reply for yet.", print_exception=False)
            last = text_of(history.pop()["content"])
            yield from chat_send(last, history, prompt_text, model_id, *params, request)

        def chat_meter(text: str, messages: list[dict[str, Any]], prompt_text: str, model_id: str,
                       max_new: Any) -> str:
            inputs: dict[str, Any] = {"message": text if text and text.strip() else "?",
                                      "history": history_pairs(messages)}
            if prompt_text != default_prompt:
                inputs["system_prompt"] = prompt_text
            try:
                _, prepared, _ = playground.prepare("chat", model_id, inputs, {"max_new_tokens": max_new})
            except PromptTooLongError as exc:
                return meter_html(None, exc.message)
            except PlaygroundError:
                return ""
            notes = " ".join(prepared.notices)
            return meter_html(prepared.breakdown) + (f"<div>{html.escape(notes)}</div>" if notes else "")

        def fill_run(code: str, name: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any,
                     repetition: Any, stop: str, seed_value: Any, request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop, seed_value)
            run = start("fill", model_id, {"code": code, "filename": name}, values, request)
            raw_prompt = run.raw_prompt
            yield "", "", "", "Generating…", raw_prompt, gr.skip()
            for raw in stream(run, request):
                full, middle = run.present(raw)
                yield full, middle, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            record = run.record
            yield (record.text, record.middle, mark_middle(code, record.middle or ""), stats_line(record),
                   raw_prompt, record.id)

        def complete_run(prompt: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any,
                         repetition: Any, stop: str, seed_value: Any,
                         request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop, seed_value)
            run = start("complete", model_id, {"prompt": prompt}, values, request)
            yield prompt, "Generating…", gr.skip()
            for raw in stream(run, request):
                yield prompt + raw, gr.skip(), gr.skip()
            record = run.record
            yield prompt + record.text, stats_line(record), record.id

        def stop_runs(request: gr.Request) -> None:
            active.stop(request.session_hash or "")

        # ------------------------------------------------------------ sharing

        def share_outputs(record_id: str | None, request: gr.Request) -> tuple[Any, ...]:
            try:
                created = playground.share(record_id or "")
            except PlaygroundError as exc:
                raise _user_error(exc) from None
            url, delete_url = share_links(playground.settings, request.request, created.id, created.delete_token)
            note = (f"Anyone with the link can open it. To remove it later, keep this delete link "
                    f"(shown only now): [{html.escape(delete_url)}]({delete_url})")
            return gr.Textbox(value=url, visible=True), gr.Group(visible=False), gr.Markdown(note, visible=True), True

        def share_click(record_id: str | None, ack: bool, request: gr.Request) -> tuple[Any, ...]:
            if not record_id:
                raise gr.Error("Generate something first; then it can be shared.", print_exception=False)
            if not ack:  # before a user's first share, say plainly that the link is public
                return gr.skip(), gr.Group(visible=True), gr.skip(), gr.skip()
            return share_outputs(record_id, request)

        # ------------------------------------------------------------ opening a share

        editable = [message, system_prompt, code_in, filename, prompt_in]
        # The code editor does not switch to read-only after it is built, so a shared view also hides
        # the buttons that would run it; "Edit a copy" brings both back.
        run_buttons = [send, regenerate, fill_go, complete_go]

        def restore(request: gr.Request) -> dict[Any, Any]:
            share_id = request.query_params.get("share") if request else None
            if not share_id:
                return {tabs: gr.skip()}  # an empty dict would read as one missing value
            try:
                record = playground.open_share(share_id)
            except PlaygroundError as exc:
                gr.Warning(html.escape(exc.message))
                return {tabs: gr.skip()}
            updates: dict[Any, Any] = {tabs: gr.Tabs(selected=record.mode)}
            updates.update({c: gr.update(interactive=False) for c in editable})
            updates.update({b: gr.Button(visible=False) for b in run_buttons})
            params = record.params
            updates.update({s: params.get(n) for s, n in zip(sliders, PARAM_NAMES, strict=True)})
            user_stops = [s for s in params.get("stop", []) if s not in ("\nHuman:", "\n-----")]
            updates[stop_text] = "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in user_stops)
            updates[seed] = str(params.get("seed", ""))
            if record.model in playground.slots:
                updates[model] = record.model
            text = share_banner(record, served=record.model in playground.slots)
            if record.mode == "chat":
                updates.update({chatbot: history_messages(record), chat_stats: stats_line(record),
                                chat_raw: record.raw_prompt, message: "",
                                system_prompt: record.inputs.get("system_prompt", default_prompt)})
                updates.update({chat_banner["group"]: gr.Group(visible=True), chat_banner["text"]: text})
            elif record.mode == "fill":
                updates.update({code_in: record.inputs["code"], filename: record.inputs.get("filename", ""),
                                code_out: record.text, middle_out: record.middle, fill_raw: record.raw_prompt,
                                fill_mark: mark_middle(record.inputs["code"], record.middle or ""),
                                fill_stats: stats_line(record)})
                updates.update({fill_banner["group"]: gr.Group(visible=True), fill_banner["text"]: text})
            else:
                updates.update({prompt_in: record.inputs["prompt"], complete_out: record.inputs["prompt"] + record.text,
                                complete_stats: stats_line(record)})
                updates.update({complete_banner["group"]: gr.Group(visible=True), complete_banner["text"]: text})
            return updates

        def edit_copy() -> list[Any]:
            return ([gr.update(interactive=True) for _ in editable] + [gr.Button(visible=True) for _ in run_buttons]
                    + [gr.Group(visible=False)] * 3)

        # ------------------------------------------------------------ wiring

        generation = {"concurrency_id": "generate", "concurrency_limit": playground.slot(None).concurrency}
        quiet = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}
        chat_inputs = [chatbot, system_prompt, model, *param_inputs]
        chat_outputs = [chatbot, message, chat_stats, chat_raw, chat_share["record"]]
        send_event = send.click(chat_send, [message, *chat_inputs], chat_outputs, api_name="chat", **generation)
        submit_event = message.submit(chat_send, [message, *chat_inputs], chat_outputs, api_visibility="private",
                                      **generation)
        regenerate.click(chat_regenerate, chat_inputs, chat_outputs, api_visibility="private", **generation)
        clear.click(lambda: ([], "", "", None), None, [chatbot, chat_stats, chat_raw, chat_share["record"]],
                    api_visibility="private")
        meter_inputs = [message, chatbot, system_prompt, model, sliders[0]]
        for event in (send_event, submit_event):
            event.then(chat_meter, meter_inputs, meter, **quiet)
        message.input(chat_meter, meter_inputs, meter, trigger_mode="always_last", **quiet)
        fill_outputs = [code_out, middle_out, fill_mark, fill_stats, fill_raw, fill_share["record"]]
        fill_inputs = [code_in, filename, model, *param_inputs]
        fill_go.click(fill_run, fill_inputs, fill_outputs, api_name="fill", **generation)
        complete_inputs = [prompt_in, model, *param_inputs]
        complete_outputs = [complete_out, complete_stats, complete_share["record"]]
        complete_go.click(complete_run, complete_inputs, complete_outputs, api_name="complete", **generation)
        for button in (chat_stop, fill_stop, complete_stop):
            button.click(stop_runs, None, None, **quiet)
        for panel in panels.values():
            outputs = [panel["link"], panel["confirm_group"], panel["delete"], acknowledged]
            panel["button"].click(share_click, [panel["record"], acknowledged], outputs, api_visibility="private")
            panel["confirm"].click(share_outputs, [panel["record"]], outputs, api_visibility="private")
        banners = [chat_banner["group"], fill_banner["group"], complete_banner["group"]]
        for shared in (chat_banner, fill_banner, complete_banner):
            shared["copy"].click(edit_copy, None, [*editable, *run_buttons, *banners], api_visibility="private")
        chat_banner["rerun"].click(edit_copy, None, [*editable, *run_buttons, *banners], api_visibility="private").then(
            chat_regenerate, chat_inputs, chat_outputs, api_visibility="private", **generation)
        fill_banner["rerun"].click(edit_copy, None, [*editable, *run_buttons, *banners], api_visibility="private").then(
            fill_run, fill_inputs, fill_outputs, api_visibility="private", **generation)
        complete_banner["rerun"].click(edit_copy, None, [*editable, *run_buttons, *banners], api_visibility="private").then(
            complete_run, complete_inputs, complete_outputs, api_visibility="private", **generation)
        filename.change(lambda n: language_for(n) or "plain text", filename, language, api_visibility="private")
        language.change(lambda lang: [gr.Code(language=None if lang == "plain text" else lang)] * 3,
                        language, [code_in, code_out, middle_out], api_visibility="private")
        model.change(lambda m: [model_status(m), *spec_defaults(m)], model, [status, *sliders], api_visibility="private")
        timer.tick(lambda m: (model_status(m), gr.Timer(active=not playground.slot(m).info().loaded)), model,
                   [status, timer], **quiet)
        restore_outputs = [tabs, *editable, *run_buttons, *sliders, stop_text, seed, model, chatbot, chat_stats, chat_raw,
                           code_out, middle_out, fill_raw, fill_mark, fill_stats, complete_out, complete_stats,
                           *[b[k] for b in (chat_banner, fill_banner, complete_banner) for k in ("group", "text")]]
        demo.load(restore, None, restore_outputs, **quiet).then(chat_meter, meter_inputs, meter, **quiet)
        demo.unload(stop_runs)
    return demo


HEAD = f"<script>{SUBMIT_SHORTCUT_JS}</script>"
