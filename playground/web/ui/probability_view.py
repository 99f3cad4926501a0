"""What the model weighed, under a result: each generated token coloured by its probability, its
alternatives on hover or tap, and several candidates side by side.

Every token and candidate text comes from the model, so all of it is escaped:
hostile token text renders as text. Clicking an alternative (``data-branch``)
or a candidate's button (``data-action``) reaches Python through the HTML
component's own events (``trigger`` in ``js_on_load``); copying stays in the
browser.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import gradio as gr

from playground.record import Candidate

# Probability bands, most likely first: (lower bound, css class, legend).
_BANDS = ((0.9, "p-high", "≥ 90 %"), (0.5, "p-good", "50–90 %"), (0.2, "p-mid", "20–50 %"),
          (0.05, "p-low", "5–20 %"), (0.0, "p-rare", "< 5 %"))

CSS = """
.probs { white-space:pre-wrap; font-family:ui-monospace,monospace; font-size:90%; line-height:1.7 }
.probs .nl { color:#9ca3af; font-size:80% }
.result-view { max-height:40em; overflow:auto; border:1px solid #e5e7eb; border-radius:6px; padding:8px }
.result-view .ctx { color:#4b5563 } .result-view mark.gen, .probs-legend mark.gen { background:#dbeafe; color:inherit }
.probs .tok { position:relative; border-radius:3px; cursor:default; outline:none }
.probs .tok:hover, .probs .tok:focus { box-shadow:0 0 0 1px #374151 }
.probs .tip { display:none; position:absolute; left:0; top:1.6em; z-index:20; background:#111827; color:#f9fafb;
  padding:4px 6px; border-radius:4px; white-space:nowrap; font-size:85% }
.probs .tok:hover .tip, .probs .tok:focus .tip, .probs .tok:focus-within .tip { display:block }
.probs .alt { display:block; width:100%; text-align:left; background:none; border:0; color:inherit; padding:1px 2px;
  font:inherit } .probs button.alt { cursor:pointer } .probs button.alt:hover { background:#374151 }
.p-high { background:#bbf7d0 } .p-good { background:#d9f99d } .p-mid { background:#fef08a }
.p-low { background:#fed7aa } .p-rare { background:#fecaca }
.probs-legend { font-size:85%; margin:4px 0 } .probs-legend span { padding:0 6px; margin-right:4px; border-radius:3px }
.cands { display:grid; grid-template-columns:repeat(auto-fill,minmax(280px,1fr)); gap:8px }
.cand { border:1px solid #d1d5db; border-radius:6px; padding:6px; min-width:0 }
.cand pre { white-space:pre; overflow-x:auto; margin:4px 0 }  /* a long line scrolls inside its own card */
.probs .special { font-style:italic; color:#9ca3af }
.cand-head { font-size:85%; color:#4b5563 } .cand button { margin-right:6px }
"""

# One listener on the component (its content is re-rendered on every update).
BRANCH_JS = """
element.addEventListener('click', (event) => {
  const alt = event.target.closest('[data-branch]');
  if (alt) { event.preventDefault(); trigger('branch', {choice: alt.dataset.branch}); }
});
"""
PICK_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action]');
  if (!button) return;
  if (button.dataset.action === 'copy') {
    const text = button.closest('.cand').querySelector('pre').innerText;
    navigator.clipboard.writeText(text).then(() => { button.innerText = 'Copied'; });
    return;
  }
  trigger('pick', {action: button.dataset.action, index: Number(button.dataset.index)});
});
"""


def probability_box(mode: str) -> gr.HTML:
    return gr.HTML(elem_id=f"{mode}-probs", js_on_load=BRANCH_JS)


def result_view_choice(mode: str) -> gr.Radio:
    return gr.Radio(["Marked", "Code"], value="Marked", show_label=False, elem_id=f"{mode}-view", container=False,
                    info="Marked: what the model wrote, in place (coloured by probability when asked). "
                         "Code: the result in a highlighting editor.")


def wire_result_view(choice: gr.Radio, marked: gr.HTML, code: gr.Code) -> None:
    """One view of the result at a time: the marked text, or the code editor."""
    choice.change(lambda view: {marked: gr.update(visible=view == "Marked"), code: gr.update(visible=view == "Code")},
                  choice, [marked, code], api_visibility="private", show_progress="hidden")


def candidates_box(mode: str) -> gr.HTML:
    return gr.HTML(elem_id=f"{mode}-candidates", js_on_load=PICK_JS)


# A control token of the StarCoder family (end of text, FIM sentinels, metadata). A single token whose whole text
# is one of these spellings is the control token itself: typed text splits "<fim_suffix>" into several tokens.
_SPECIAL = re.compile(r"<(\|[a-z_]+\||fim[_-][a-z]+|filename|file_sep|gh_stars|repo_?name|issue_[a-z]+|"
                      r"jupyter_[a-z]+|empty_output|commit_[a-z]+|pr(_[a-z]+)?)>")


def is_special(text: str) -> bool:
    return _SPECIAL.fullmatch(text) is not None


def _band(logprob: float) -> str:
    probability = math.exp(logprob)
    return next(css for bound, css, _ in _BANDS if probability >= bound)


def _visible(text: str) -> str:
    """A token's text as an alternative list shows it: whitespace made visible, then escaped."""
    return html.escape(text.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·")) or "∅"


def _shown(text: str) -> str:
    """A token's text in the coloured view: escaped, with a visible mark before each line break, so a
    token that is only a newline can be seen and hovered too."""
    return html.escape(text).replace("\n", '<span class="nl">↵</span>\n')


def _percent(logprob: float) -> str:
    return f"{100 * math.exp(logprob):.1f} %"


def legend() -> str:
    bands = "".join(f'<span class="{css}">{label}</span>' for _, css, label in _BANDS)
    return f'<div class="probs-legend">Probability of each token: {bands} · hover or tap a token</div>'


def result_html(before: str, generated: str, after: str, tokens: list[dict[str, Any]] | None,
                branchable: bool) -> str:
    """The whole result as one view: the user's text around it, and the generated part marked, or coloured
    token by token when its probabilities were asked for (not a second copy of the text: this is the
    result, with what the model weighed in place). "" before there is a result."""
    if not (before or generated or after):
        return ""
    context = '<span class="ctx">{}</span>'
    if tokens and "".join(str(t["text"]) for t in tokens) == generated:
        middle = _token_spans(tokens, branchable)
        head = legend()
    else:
        middle, head = f'<mark class="gen">{html.escape(generated)}</mark>', _MARKED
    body = (context.format(html.escape(before)) if before else "") + middle + (
        context.format(html.escape(after)) if after else "")
    return f'{head}<div class="probs result-view">{body}</div>'


_MARKED = '<div class="probs-legend"><mark class="gen">Marked</mark>: what the model wrote</div>'


def tokens_html(tokens: list[dict[str, Any]] | None, branchable: bool) -> str:
    """The generated tokens coloured by probability; "" when there are none to show. With ``branchable``
    each alternative is a button that starts a new generation from it."""
    if not tokens:
        return ""
    return legend() + f'<div class="probs">{_token_spans(tokens, branchable)}</div>'


def _token_spans(tokens: list[dict[str, Any]], branchable: bool) -> str:
    spans = []
    for index, token in enumerate(tokens):
        alternatives = "".join(_alternative(index, rank, alt, token, branchable)
                               for rank, alt in enumerate(token.get("top", [])))
        tip = f'<span class="tip" role="tooltip">{alternatives}</span>' if alternatives else ""
        label = html.escape(f"{_percent(token['logprob'])}", quote=True)
        spans.append(f'<span class="tok {_band(token["logprob"])}" tabindex="0" title="{label}">'
                     f"{_shown(token['text'])}{tip}</span>")
    return "".join(spans)


def _alternative(index: int, rank: int, alt: dict[str, Any], token: dict[str, Any], branchable: bool) -> str:
    """One alternative; a control token (the end of text, a FIM sentinel) is named, never offered as code."""
    special = is_special(alt["text"])
    name = (f'<span class="special">{html.escape(alt["text"])} (control token)</span>' if special
            else _visible(alt["text"]))
    body = f"{name} {_percent(alt['logprob'])}"
    chosen = alt["text"] == token["text"]
    if branchable and not chosen and not special:
        return f'<button class="alt" data-branch="{index}:{rank}">{body}</button>'
    return f'<span class="alt">{"✓ " if chosen else ""}{body}</span>'


def candidates_html(candidates: list[Candidate] | None, shown: int = 0) -> str:
    """Ranked candidates (the part each generated), each with its score and Apply / Copy / Share;
    ``shown`` is the one in the result."""
    if not candidates:
        return ""
    cards = []
    for index, candidate in enumerate(candidates):
        score = candidate.mean_logprob
        scored = f"mean log-prob {score:.3f} (≈{_percent(score)} a token)" if score is not None else "no score"
        count = f" · ×{candidate.count}" if candidate.count > 1 else ""
        mark = " · shown above" if index == shown else ""
        cards.append(
            f'<div class="cand" data-rank="{index + 1}"><div class="cand-head">#{index + 1} · {scored}{count} · '
            f"finish: {html.escape(candidate.finish_reason)}{mark}</div>"
            f"<pre>{html.escape(candidate.shown.generated)}</pre>"
            f'<button data-action="apply" data-index="{index}">Apply</button>'
            f'<button data-action="copy" data-index="{index}">Copy</button>'
            f'<button data-action="share" data-index="{index}">Share</button></div>')
    return (f'<div class="cand-title">{len(candidates)} distinct candidates, most likely first</div>'
            f'<div class="cands">{"".join(cards)}</div>')


def branch_point(choice: str, tokens: list[dict[str, Any]]) -> str | None:
    """The text up to the clicked alternative, with the alternative in its place; None if ``choice``
    (``"token:rank"`` from the page) does not name one."""
    try:
        index, rank = (int(part) for part in choice.split(":"))
        alternative = tokens[index]["top"][rank]["text"]
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None
    if index < 0 or rank < 0 or is_special(str(alternative)):
        return None
    return "".join(str(t["text"]) for t in tokens[:index]) + str(alternative)
