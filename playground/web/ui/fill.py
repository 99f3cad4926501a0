"""The Fill-in-the-middle tab: code with one ``<FILL_HERE>`` hole, and the public ``/fill`` endpoint."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError
from playground.modes import Mode, Restored
from playground.prompting.fill import FILL_MARKER, split_hole
from playground.prompting.repo_context import read_listing, write_listing
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
    user_error,
    wire_weighing,
)
from playground.web.ui.parts import FILL_EXAMPLE, FILL_EXAMPLES, LANGUAGES, language_for, stats_line
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
class FillTab:
    banner: Banner
    filename: gr.Textbox
    language: gr.Dropdown
    code: gr.Code
    run: gr.Button
    stop: gr.Button
    mark: gr.Markdown
    view: gr.Radio  # which view of the result is shown: marked (with probabilities) or the code editor
    result: gr.Code
    middle: gr.Code
    stats: gr.Markdown
    probabilities: gr.HTML
    candidates: gr.HTML
    attribution: gr.HTML
    share: SharePanel
    raw: gr.Textbox
    weighed: gr.State  # {"code", "tokens", "record", "shown"} of the result shown, for branching and applying
    mode: Mode
    examples: gr.Dataset
    repo_name: gr.Textbox
    files: gr.Textbox  # other files of the repository, as a listing (repo_context.read_listing)
    budget: gr.Markdown  # where the prompt's tokens went

    @property
    def editable(self) -> list[Any]:
        return [self.code, self.filename, self.repo_name, self.files]

    @property
    def live_controls(self) -> list[Any]:
        return [self.run, self.stop, self.examples]

    def inputs(self, ctx: UiContext) -> list[Any]:
        return [self.code, self.filename, ctx.model, *ctx.params.inputs(self.mode), self.repo_name, self.files]

    @property
    def outputs(self) -> list[Any]:
        return [self.result, self.middle, self.mark, self.stats, self.probabilities, self.candidates,
                self.attribution, self.raw, self.share.record, self.weighed, self.budget]


def build_fill_tab(ctx: UiContext) -> FillTab:
    banner = build_banner("fill")
    with gr.Row():
        filename = gr.Textbox(label="Filename (optional; used as <filename> metadata)", placeholder="src/fib.py",
                              elem_id="fill-filename")
        language = gr.Dropdown(LANGUAGES, value="python", label="Highlighting")
    code = code_box(FILL_EXAMPLE, language="python", interactive=True, lines=12,
                    label=f"Code with one {FILL_MARKER} hole (Ctrl/Cmd+Enter fills)", elem_id="fill-code", max_lines=30,
                    elem_classes=["input-editor"])
    with gr.Row():
        run = gr.Button("Fill", variant="primary", elem_id="fill-run", elem_classes=["submit"])
        stop = gr.Button("Stop", variant="stop", elem_id="fill-stop")
    mark = gr.Markdown(elem_id="fill-mark")
    view = result_view_choice("fill")
    probabilities = probability_box("fill")  # the result, its generated part marked or coloured by probability
    result = code_box(language="python", interactive=False, lines=12, max_lines=30, label="Result",
                      elem_id="fill-result", visible=False)
    # The middle alone, for API clients (the /fill endpoint's "Generated middle"); the page marks it in place.
    middle = code_box(language="python", interactive=False, lines=4, label="Generated middle", elem_id="fill-middle",
                      visible=False)
    stats = gr.Markdown(elem_id="fill-stats")
    candidates = candidates_box("fill")
    attribution = gr.HTML(elem_id="fill-attribution")
    share = build_share_panel("fill")
    examples = gr.Examples(FILL_EXAMPLES, [code, filename], label="Try").dataset
    repo_name, files, budget = _context_panel()
    with gr.Accordion("Raw prompt", open=False):
        raw = gr.Textbox(lines=8, interactive=False, elem_id="fill-raw", buttons=["copy"],
                         label="Exactly what the model was given")
    return FillTab(banner, filename, language, code, run, stop, mark, view, result, middle, stats, probabilities,
                   candidates, attribution, share, raw, gr.State(None), ctx.playground.modes.named("fill"), examples,
                   repo_name, files, budget)


# "Add files…" reads the chosen files in the browser and appends them to the listing: no upload route is
# opened (the server refuses Gradio's), and nothing lands on the server's disk.
CONTEXT_UPLOAD_JS = """
document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.id !== "fill-context-upload") return;
  const box = document.querySelector("#fill-context textarea");
  if (!box) return;
  let listing = box.value;
  for (const file of input.files) {
    if (listing && !listing.endsWith("\\n")) listing += "\\n";
    listing += `==> ${file.webkitRelativePath || file.name} <==\\n${await file.text()}`;
  }
  box.value = listing;
  box.dispatchEvent(new Event("input", { bubbles: true }));
  input.value = "";
});
"""


def _context_panel() -> tuple[gr.Textbox, gr.Textbox, gr.Markdown]:
    """Other files of the repository (pasted, or read from disk by the browser: nothing is uploaded to the
    server's disk) and, after a fill, where the prompt's tokens went."""
    with gr.Accordion("Repository context and prompt budget", open=False, elem_id="fill-context-panel"):
        repo_name = gr.Textbox("", label="Repository name (optional)", placeholder="bigcode/my-app",
                               elem_id="fill-repo")
        files = gr.Textbox("", label="Other files: each under a line ==> path <==", lines=6, max_lines=20,
                           placeholder="==> src/utils.py <==\ndef double(x):\n    return 2 * x\n",
                           elem_id="fill-context")
        gr.HTML('<label class="context-upload">Add files… <input type="file" multiple id="fill-context-upload">'
                "</label>")
        budget = gr.Markdown("The prompt's budget shows here after a fill.", elem_id="fill-budget")
    return repo_name, files, budget


def fill(ctx: UiContext, tab: FillTab, code: str, filename: str, model: str, values: ParamValues,
         repo_name: str | None, files: str | None, request: gr.Request) -> Iterator[Updates]:
    """The public ``/fill`` endpoint: the code with its hole filled, streamed (several candidates arrive
    together, ranked). ``files`` are the repository's other files as a listing (``==> path <==`` lines)."""
    inputs: dict[str, Any] = {"code": code, "filename": filename}
    if (repo_name or "").strip() or (files or "").strip():
        try:
            context = read_listing(files or "")
        except PlaygroundError as exc:
            raise user_error(exc, request) from None
        inputs.update(repo_name=(repo_name or "").strip(), context=[asdict(f) for f in context])
    run = ctx.start(tab.mode, model, inputs, values, request)
    waiting = f"Generating {run.params.n} candidates…" if run.params.n > 1 else "Generating…"
    # Every update names all the tab's shown outputs: Gradio rebuilds each one an update leaves out.
    updates: Updates = {tab.result: "", tab.middle: "", tab.mark: "", tab.stats: waiting, tab.raw: run.raw_prompt,
                        tab.attribution: "", tab.probabilities: "", tab.candidates: ""}
    yield updates
    prefix, suffix = split_hole(code)
    for raw in ctx.stream(run, request):
        shown = run.present(raw)
        yield {**updates, tab.result: shown.text, tab.middle: shown.generated,
               tab.probabilities: result_html(prefix, shown.generated, suffix, None, branchable=False)}
    record = finished(run)
    yield {tab.stats: stats_line(record), tab.raw: record.raw_prompt, tab.share.record: record.id,
           tab.budget: budget_table(record), **_shown(tab, record, code)}


def budget_table(record: Generation) -> str:
    """Where the prompt's tokens went, part by part."""
    if not record.budget:
        return ""
    rows = "".join(f"| {html.escape(part.part)} | {part.tokens} | {html.escape(part.kept)} |\n"
                   for part in record.budget)
    return "| part of the prompt | tokens | kept |\n|---|---:|---|\n" + rows


def _shown(tab: FillTab, record: Generation, code: str, candidate: int = 0) -> Updates:
    """The result as one of its candidates (the best by default), with what the model weighed for it:
    every panel describes the candidate shown, and Share shares it."""
    shown, tokens, report = record.viewed(candidate)
    token_data = None if tokens is None else tokens_to_json(tokens)
    prefix, suffix = split_hole(code)
    return {tab.result: shown.text, tab.middle: shown.generated, tab.mark: mark_middle(code, shown.generated),
            tab.probabilities: result_html(prefix, shown.generated, suffix, token_data, branchable=True),
            tab.candidates: candidates_html(record.candidates, candidate),
            tab.weighed: {"code": code, "tokens": token_data, "record": record, "shown": candidate},
            tab.attribution: attribution_html(report, shown.generated)}


def show_shared(tab: FillTab, restored: Restored, record: Generation, candidate: int = 0) -> Updates:
    code = restored.inputs["code"]
    return {tab.code: code, tab.filename: restored.inputs["filename"], tab.raw: record.raw_prompt,
            tab.repo_name: restored.inputs.get("repo_name", ""),
            tab.files: write_listing(restored.inputs.get("context", [])), tab.budget: budget_table(record),
            tab.stats: stats_line(record), **_shown(tab, record, code, candidate)}


def branch(tab: FillTab, weighed: dict[str, Any] | None, event: gr.EventData) -> Updates:
    """A clicked alternative: the hole moves to just after it, so the model goes on from there."""
    start = branch_point(str(getattr(event, "choice", "")), (weighed or {}).get("tokens") or [])
    if weighed is None or start is None:
        raise gr.Error("That alternative is no longer shown; fill again.", print_exception=False)
    prefix, suffix = split_hole(weighed["code"])
    return {tab.code: gr.update(value=prefix + start + FILL_MARKER + suffix, interactive=True)}


def pick(tab: FillTab, weighed: dict[str, Any] | None, event: gr.EventData) -> Updates:
    """A candidate's Apply (shown in every panel, and into the editor with the hole after it, to fill on
    from there) or Share (the link opens on it)."""
    index = getattr(event, "index", None)
    record: Generation | None = (weighed or {}).get("record")
    if weighed is None or record is None or not isinstance(index, int) or not 0 <= index < len(record.candidates or []):
        raise gr.Error("That candidate is no longer shown; fill again.", print_exception=False)
    if getattr(event, "action", "") == "share":
        return {tab.share.candidate: index}
    prefix, suffix = split_hole(weighed["code"])
    middle = (record.candidates or [])[index].shown.generated
    return {tab.code: gr.update(value=prefix + middle + FILL_MARKER + suffix, interactive=True),
            tab.share.candidate: None, **_shown(tab, record, weighed["code"], index)}


def highlight(tab: FillTab, language: str) -> Updates:
    mode = None if language == "plain text" else language
    return {box: gr.Code(language=mode) for box in (tab.code, tab.result, tab.middle)}  # type: ignore[arg-type]


def wire_fill(ctx: UiContext, tab: FillTab, generation: dict[str, Any], quiet: dict[str, Any]) -> None:
    run = bind(fill, ctx, tab, params=ctx.params.names(tab.mode))
    tab.run.click(run, tab.inputs(ctx), tab.outputs, api_name="fill", **generation)
    wire_weighing(ctx, tab, run, branch, pick, [tab.code, tab.result, tab.middle, tab.mark, tab.probabilities,
                                                tab.candidates, tab.weighed, tab.attribution], generation)
    tab.filename.change(lambda name: language_for(name) or "plain text", tab.filename, tab.language,
                        api_visibility="private")
    tab.language.change(bind(highlight, tab), tab.language, [tab.code, tab.result, tab.middle],
                        api_visibility="private")
    wire_result_view(tab.view, tab.probabilities, tab.result)


TAB = TabKind("fill", "Fill in the middle", build_fill_tab, wire_fill, show_shared, fill)


def mark_middle(code: str, middle: str) -> str:
    """Say which lines of the result the model wrote."""
    if not middle.strip():
        return "The model wrote nothing for the hole."
    first = code.split(FILL_MARKER)[0].count("\n") + 1
    last = first + middle.rstrip("\n").count("\n")
    return f"Lines {first}–{last} of the result were generated (marked below)."
