"""The Gradio Blocks: chat, fill and complete tabs over one model selector and parameter panel.

Handlers are thin: they collect widget values, call ``Playground.start``, and
stream the run through ``coalesce``. Stop flags the run's cancel event, so the
model itself stops; it is not merely the page that stops listening.
"""

from __future__ import annotations

import html
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError, PromptTooLongError
from playground.params import BOUNDS, MAX_STOP_SEQUENCES
from playground.prompting.chat import present_reply
from playground.prompting.fill import FILL_MARKER
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.streaming import coalesce

# gr.Code highlights only these; java/go/rust raise, so they fall back to plain text.
_EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".hpp": "cpp", ".sql": "sql", ".sh": "shell", ".bash": "shell",
    ".json": "json", ".html": "html", ".css": "css", ".yaml": "yaml", ".yml": "yaml", ".md": "markdown",
    ".r": "r", "Dockerfile": "dockerfile",
}
LANGUAGES = ["python", "javascript", "typescript", "c", "cpp", "shell", "sql", "json", "html", "css", "yaml",
             "markdown", "r", "dockerfile", "plain text"]

FILL_EXAMPLE = '''def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    numbers = [0, 1]
    <FILL_HERE>
    return numbers[:n]
'''
COMPLETE_EXAMPLE = "import os\n\n\ndef list_python_files(root):\n"


class VerbatimCode(gr.Code):
    """gr.Code that keeps leading and trailing whitespace: indentation is part of the code."""

    def postprocess(self, value: str | None) -> str | None:
        return value

    @classmethod
    def get_block_name(cls) -> str:
        return "code"  # render with the stock code editor in the browser


def language_for(filename: str | None) -> str | None:
    if not filename:
        return "python"
    name = filename.rsplit("/", 1)[-1]
    for suffix, language in _EXTENSIONS.items():
        if name == suffix or name.lower().endswith(suffix.lower()):
            return language
    return None


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
            self._runs[session].discard(run)

    def stop(self, session: str) -> None:
        with self._lock:
            runs = list(self._runs.pop(session, ()))
        for run in runs:
            run.stop()


def stats_line(record: Generation) -> str:
    timings, usage = record.timings, record.usage
    parts = [f"{usage['completion_tokens']} tokens"]
    if timings.get("tokens_per_s"):
        parts.append(f"{timings['tokens_per_s']:.1f} tok/s")
    if timings.get("ttft_ms") is not None:
        parts.append(f"first token {timings['ttft_ms']:.0f} ms")
    parts.append(f"finish: {record.finish_reason}")
    parts.append(f"seed {record.params.get('seed')}")
    line = " · ".join(parts)
    extra = [record.error] if record.error else []
    extra += record.notices
    return line + "".join(f"\n\n> {html.escape(n)}" for n in extra)


def params_from(max_new: Any, temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop_text: str,
                seed: Any) -> dict[str, Any]:
    """Widget values → raw params; GenerationParams.parse validates them in the service."""
    stops = [line.replace("\\n", "\n").replace("\\t", "\t") for line in (stop_text or "").splitlines() if line]
    return {"max_new_tokens": max_new, "temperature": temperature, "top_p": top_p, "top_k": top_k,
            "repetition_penalty": repetition, "stop": stops, "seed": None if seed in (None, "") else seed}


def _history_pairs(messages: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"role": m["role"], "content": m["content"]} for m in (messages or []) if m.get("role") in ("user", "assistant")]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content or "")


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


CSS = """
.ctx-bar { display:flex; height:8px; background:#e5e7eb; border-radius:4px; overflow:hidden; margin-bottom:4px }
.ctx-prompt { background:#6366f1 } .ctx-history { background:#22c55e } .ctx-reply { background:#f59e0b }
.ctx-over { color:#b91c1c; font-weight:600 }
"""


def build_ui(playground: Playground) -> gr.Blocks:
    active = ActiveRuns()
    model_ids = list(playground.slots)

    def spec_defaults(model_id: str) -> list[Any]:
        d = playground.slot(model_id).spec.defaults
        return [d.max_new_tokens, d.temperature, d.top_p, d.top_k, d.repetition_penalty]

    def model_status(model_id: str) -> str:
        slot = playground.slot(model_id)
        info, spec = slot.info(), slot.spec
        licence = f"[{spec.license}]({spec.license_url})" if spec.license_url else spec.license
        if not info.loaded:
            state = f"⏳ {slot.progress.message}" if not slot.progress.error else f"❌ {slot.progress.error}"
            return f"**{spec.id}** — {state}"
        where = info.endpoint or (info.placement or {}).get("summary", "")
        return f"**{spec.id}** · {info.backend} · context {info.context_length} · {where} · licence {licence}"

    with gr.Blocks(title="StarCoder Playground") as demo:
        gr.Markdown("# StarCoder Playground\nChat, fill in the middle, or complete code with StarCoder-family models.")
        with gr.Row():
            model = gr.Dropdown(model_ids, value=model_ids[0], label="Model", scale=1)
            status = gr.Markdown(model_status(model_ids[0]), elem_id="model-status")
        timer = gr.Timer(1.0, active=not playground.slot(model_ids[0]).info().loaded)
        defaults = spec_defaults(model_ids[0])
        with gr.Accordion("Parameters", open=False):
            with gr.Row():
                sliders = []
                for name, value in zip(("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty"), defaults):
                    bound = BOUNDS[name]
                    sliders.append(gr.Slider(bound.minimum, bound.maximum, value=value, step=bound.step,
                                             label=name, info=bound.help, elem_id=f"param-{name}"))
            with gr.Row():
                stop_text = gr.Textbox(label=f"Stop sequences (one per line, up to {MAX_STOP_SEQUENCES}; \\n for a newline)",
                                       lines=2, elem_id="param-stop")
                seed = gr.Number(label="Seed (empty: random, shown after each run)", value=None, precision=0,
                                 minimum=0, elem_id="param-seed")
        param_inputs = [*sliders, stop_text, seed]

        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(label="Tech Assistant", height=420, elem_id="chatbot",
                                     sanitize_html=True, feedback_options=None)
                meter = gr.HTML(elem_id="context-meter")
                message = gr.Textbox(label="Message", placeholder="Ask a programming question…", lines=2,
                                     elem_id="chat-message")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="chat-send")
                    chat_stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                    regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
                    clear = gr.Button("Clear", elem_id="chat-clear")
                chat_stats = gr.Markdown(elem_id="chat-stats")
                with gr.Accordion("Tech Assistant prompt", open=False):
                    system_prompt = gr.Textbox(value=playground.chat_prompt.text, lines=12, max_lines=30,
                                               label=f"Few-shot prompt ({playground.chat_prompt.version}); edit to try your own",
                                               elem_id="chat-prompt")
                chat_raw = gr.Textbox(label="Raw prompt of the last reply", lines=6, max_lines=20, interactive=False,
                                      visible=True, elem_id="chat-raw", buttons=["copy"])

            with gr.Tab("Fill in the middle", id="fill"):
                with gr.Row():
                    filename = gr.Textbox(label="Filename (optional; used as <filename> metadata)",
                                          placeholder="src/fib.py", elem_id="fill-filename")
                    language = gr.Dropdown(LANGUAGES, value="python", label="Highlighting")
                code_in = VerbatimCode(FILL_EXAMPLE, language="python", interactive=True, lines=12,
                                       label=f"Code with one {FILL_MARKER} hole", elem_id="fill-code")
                with gr.Row():
                    fill_go = gr.Button("Fill", variant="primary", elem_id="fill-run")
                    fill_stop = gr.Button("Stop", variant="stop", elem_id="fill-stop")
                fill_mark = gr.Markdown(elem_id="fill-mark")
                code_out = VerbatimCode(language="python", interactive=False, lines=12, label="Result",
                                        elem_id="fill-result")
                middle_out = VerbatimCode(language="python", interactive=False, lines=4,
                                          label="Generated middle", elem_id="fill-middle")
                fill_stats = gr.Markdown(elem_id="fill-stats")
                with gr.Accordion("Raw prompt", open=False):
                    fill_raw = gr.Textbox(lines=8, interactive=False, elem_id="fill-raw", buttons=["copy"],
                                          label="Exactly what the model was given")

            with gr.Tab("Complete", id="complete"):
                prompt_in = VerbatimCode(COMPLETE_EXAMPLE, language="python", interactive=True, lines=10,
                                         label="Prompt", elem_id="complete-prompt")
                with gr.Row():
                    complete_go = gr.Button("Complete", variant="primary", elem_id="complete-run")
                    complete_stop = gr.Button("Stop", variant="stop", elem_id="complete-stop")
                complete_out = VerbatimCode(language="python", interactive=False, lines=12,
                                            label="Prompt + continuation", elem_id="complete-result")
                complete_stats = gr.Markdown(elem_id="complete-stats")

        # ------------------------------------------------------------ handlers

        def start(mode: str, model_id: str, inputs: dict[str, Any], values: tuple[Any, ...],
                  request: gr.Request) -> Run:
            try:
                run = playground.start(mode, model_id, inputs, params_from(*values))
            except PlaygroundError as exc:
                raise gr.Error(html.escape(exc.message), print_exception=False) from None
            active.add(request.session_hash or "", run)
            return run

        def stream(run: Run, request: gr.Request) -> Iterator[str]:
            try:
                yield from coalesce(run)
            except PlaygroundError as exc:
                raise gr.Error(html.escape(exc.message), print_exception=False) from None
            finally:
                active.discard(request.session_hash or "", run)

        def chat_send(text: str, messages: list[dict[str, Any]], prompt_text: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop_text: str, seed: Any,
                      request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop_text, seed)
            history = _history_pairs(messages)
            inputs = {"message": text, "history": history}
            if prompt_text != playground.chat_prompt.text:
                inputs["system_prompt"] = prompt_text
            run = start("chat", model_id, inputs, values, request)
            shown = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            yield shown, "", "Generating…", gr.skip()
            for raw in stream(run, request):
                shown[-1] = {"role": "assistant", "content": present_reply(raw)}
                yield shown, gr.skip(), gr.skip(), gr.skip()
            record = run.record
            shown[-1] = {"role": "assistant", "content": record.text}
            yield shown, gr.skip(), stats_line(record), record.raw_prompt

        def chat_regenerate(messages: list[dict[str, Any]], prompt_text: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop_text: str, seed: Any,
                            request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop_text, seed)
            history = _history_pairs(messages)
            while history and history[-1]["role"] == "assistant":
                history.pop()
            if not history:
                raise gr.Error("There is no message to regenerate a reply for yet.", print_exception=False)
            last = _text_of(history.pop()["content"])
            yield from chat_send(last, history, prompt_text, model_id, *values, request)

        def chat_meter(text: str, messages: list[dict[str, Any]], prompt_text: str, model_id: str,
                       max_new: Any) -> str:
            inputs = {"message": text if text and text.strip() else "?", "history": _history_pairs(messages)}
            if prompt_text != playground.chat_prompt.text:
                inputs["system_prompt"] = prompt_text
            try:
                _, prepared, _ = playground.prepare("chat", model_id, inputs, {"max_new_tokens": max_new})
            except PromptTooLongError as exc:
                return meter_html(None, exc.message)
            except PlaygroundError:
                return ""
            notes = " ".join(prepared.notices)
            return meter_html(prepared.breakdown) + (f"<div>{html.escape(notes)}</div>" if notes else "")

        def fill_run(code: str, name: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop_text: str, seed: Any,
                     request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop_text, seed)
            run = start("fill", model_id, {"code": code, "filename": name}, values, request)
            raw_prompt = run.prepared.prompt.render()
            yield "", "", "", "Generating…", raw_prompt
            for raw in stream(run, request):
                full, middle = run.present(raw)
                yield full, middle, gr.skip(), gr.skip(), gr.skip()
            record = run.record
            yield record.text, record.middle, _mark(code, record.middle or ""), stats_line(record), raw_prompt

        def complete_run(prompt: str, model_id: str, max_new: Any, temperature: Any, top_p: Any, top_k: Any, repetition: Any, stop_text: str, seed: Any,
                         request: gr.Request) -> Iterator[tuple[Any, ...]]:
            values = (max_new, temperature, top_p, top_k, repetition, stop_text, seed)
            run = start("complete", model_id, {"prompt": prompt}, values, request)
            yield prompt, "Generating…"
            for raw in stream(run, request):
                yield prompt + raw, gr.skip()
            record = run.record
            yield prompt + record.text, stats_line(record)

        def stop(request: gr.Request) -> None:
            active.stop(request.session_hash or "")

        def on_model(model_id: str) -> list[Any]:
            return [model_status(model_id), *spec_defaults(model_id)]

        def tick(model_id: str) -> tuple[str, Any]:
            loaded = playground.slot(model_id).info().loaded
            return model_status(model_id), gr.Timer(active=not loaded)

        generation = {"concurrency_id": "generate", "concurrency_limit": playground.slot(None).concurrency}
        chat_inputs = [chatbot, system_prompt, model, *param_inputs]
        send_event = send.click(chat_send, [message, *chat_inputs], [chatbot, message, chat_stats, chat_raw],
                                api_name="chat", **generation)
        submit_event = message.submit(chat_send, [message, *chat_inputs], [chatbot, message, chat_stats, chat_raw],
                                      api_visibility="private", **generation)
        regenerate.click(chat_regenerate, chat_inputs, [chatbot, message, chat_stats, chat_raw],
                         api_visibility="private", **generation)
        clear.click(lambda: ([], "", ""), None, [chatbot, chat_stats, chat_raw], api_visibility="private")
        for event in (send_event, submit_event):
            event.then(chat_meter, [message, chatbot, system_prompt, model, sliders[0]], meter,
                       api_visibility="private", concurrency_limit=None)
        message.input(chat_meter, [message, chatbot, system_prompt, model, sliders[0]], meter,
                      api_visibility="private", concurrency_limit=None, trigger_mode="always_last",
                      show_progress="hidden")
        fill_go.click(fill_run, [code_in, filename, model, *param_inputs],
                      [code_out, middle_out, fill_mark, fill_stats, fill_raw], api_name="fill", **generation)
        complete_go.click(complete_run, [prompt_in, model, *param_inputs], [complete_out, complete_stats],
                          api_name="complete", **generation)
        for button in (chat_stop, fill_stop, complete_stop):
            button.click(stop, None, None, api_visibility="private", concurrency_limit=None, show_progress="hidden")
        filename.change(lambda n: language_for(n) or "plain text", filename, language, api_visibility="private")
        language.change(lambda lang: [gr.Code(language=None if lang == "plain text" else lang)] * 3,
                        language, [code_in, code_out, middle_out], api_visibility="private")
        model.change(on_model, model, [status, *sliders], api_visibility="private")
        timer.tick(tick, model, [status, timer], api_visibility="private", show_progress="hidden")
        demo.load(chat_meter, [message, chatbot, system_prompt, model, sliders[0]], meter, api_visibility="private")
        demo.unload(stop)
    return demo


def _mark(code: str, middle: str) -> str:
    """Say which lines of the result the model wrote."""
    prefix = code.split(FILL_MARKER)[0]
    first = prefix.count("\n") + 1
    last = first + middle.rstrip("\n").count("\n")
    if not middle.strip():
        return "The model wrote nothing for the hole."
    return f"Lines {first}–{last} of the result were generated (shown on their own below)."
