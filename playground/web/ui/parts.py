"""Pieces of the Gradio UI that hold no state: texts, examples, the code box, stats and meter HTML."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from playground.record import Generation

# gr.Code highlights only these; java/go/rust raise, so they fall back to plain text.
_EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".hpp": "cpp", ".sql": "sql", ".sh": "shell", ".bash": "shell",
    ".json": "json", ".html": "html", ".css": "css", ".yaml": "yaml", ".yml": "yaml", ".md": "markdown",
    ".r": "r", "Dockerfile": "dockerfile",
}
LANGUAGES = ["python", "javascript", "typescript", "c", "cpp", "shell", "sql", "json", "html", "css", "yaml",
             "markdown", "r", "dockerfile", "plain text"]

_ATTRIBUTION_ON = """Every result here is checked against this server's code indexes (nano-starcoder's training
corpus, and any the operator added), and a match names its file, lines and licence; for StarCoder's full
training set, also use [BigCode's search tool](https://huggingface.co/spaces/bigcode/search)."""
_ATTRIBUTION_OFF = """This server does not check results itself: check generated code against the training set
with [BigCode's search tool](https://huggingface.co/spaces/bigcode/search) and respect the original licences."""


def notice(attribution_on: bool) -> str:
    """The licence and intended-use note under the tabs; what it says of attribution follows the server."""
    return f"""---
**Licence and intended use.** StarCoder-family weights are released under the
[BigCode OpenRAIL-M licence](https://huggingface.co/spaces/bigcode/bigcode-model-license-agreement), whose
use restrictions apply to what you generate here. The models write code, not facts: review, test and
understand anything before you use it. **Attribution:** the models can reproduce code from their training
data verbatim. {_ATTRIBUTION_ON if attribution_on else _ATTRIBUTION_OFF}
The default model, nano-starcoder, is a 3.9M-parameter demo trained by this project on Python's standard
library and 111 permissively licensed packages: it shows how the playground works, not what StarCoder can do.
"""

SHARE_WARNING = (
    "**Anyone with the link can see this generation** (your input and the output). "
    "Links are unguessable and are not indexed by search engines, and you get a delete link."
)

# Ctrl/Cmd+Enter clicks the primary button of the visible tab.
SUBMIT_SHORTCUT_JS = """
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const buttons = [...document.querySelectorAll("button.submit")].filter((b) => b.offsetParent !== null);
  if (buttons.length) { event.preventDefault(); buttons[0].click(); }
});
"""

CHAT_EXAMPLES = [
    ["How do I read a CSV file into a list of dicts in Python?"],
    ["What is the difference between a process and a thread?"],
    ["Translate this to JavaScript: squares = [x * x for x in range(10) if x % 2 == 0]"],
]

FILL_EXAMPLES = [
    ["def is_palindrome(text: str) -> bool:\n    cleaned = <FILL_HERE>\n    return cleaned == cleaned[::-1]\n",
     "text_utils.py"],
    ["import json\n\n\ndef load_config(path):\n    with open(path) as handle:\n        <FILL_HERE>\n", "config.py"],
]

COMPLETE_EXAMPLES = [
    ["def quicksort(items):\n"],
    ["class LRUCache:\n    def __init__(self, capacity: int):\n"],
]

FILL_EXAMPLE = '''def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    numbers = [0, 1]
    <FILL_HERE>
    return numbers[:n]
'''
# It ends inside a line, so the first thing written visibly continues it. (Ending on a bare newline
# before indented code gave nothing half the time with nano-starcoder v5, seeds 0-9; v6 answers all ten.)
COMPLETE_EXAMPLE = (
    'import os\n\n\ndef list_python_files(root):\n'
    '    """Return the paths of the Python files under root."""\n    paths = []\n    for'
)


def verbatim_code(value: str | None = None, **kwargs: Any) -> gr.Code:
    """A code box that keeps leading and trailing whitespace: indentation is part of the code."""
    from playground.web.ui.verbatim import VerbatimCode

    return VerbatimCode(value, **kwargs)


def language_for(filename: str | None) -> str | None:
    if not filename:
        return "python"
    name = filename.rsplit("/", 1)[-1]
    for suffix, language in _EXTENSIONS.items():
        if name == suffix or name.lower().endswith(suffix.lower()):
            return language
    return None


def stats_line(record: Generation) -> str:
    timings = record.timings
    several = record.params.n > 1 and bool(record.candidates)
    parts = [f"{record.params.n} candidates · {record.usage.completion_tokens} tokens in all" if several
             else f"{record.usage.completion_tokens} tokens"]
    if timings.tokens_per_s:
        parts.append(f"{timings.tokens_per_s:.1f} tok/s" + (" per candidate" if several else ""))
    if timings.ttft_ms is not None and not several:  # candidates arrive together: no first token to time
        parts.append(f"first token {timings.ttft_ms:.0f} ms")
    parts.append(f"finish: {record.finish_reason}")
    parts.append(f"seed {record.params.seed}")
    parts.append(f"id {record.id}")  # API clients share it with POST /api/shares
    line = " · ".join(parts)
    if not record.generated.strip() and not record.incomplete:  # "1 tokens · finish: eos" alone says too little
        line = f"**The model wrote nothing** (it ended at once). Try another seed or a longer prompt. · {line}"
    extra = [record.error] if record.error else []
    extra += record.notices
    return line + "".join(f"\n\n> {html.escape(n)}" for n in extra)


CSS = """
/* Pasted repository files are code: keep their columns. */
#fill-context textarea, #fill-raw textarea { font-family: ui-monospace, monospace; font-size: 90%; }
/* WCAG AA (4.5:1) for text on buttons and the selected tab: Gradio's orange and red are 2.8:1 and 3.8:1 with white. */
:root, .gradio-container {
  --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
  --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff;
  --button-cancel-background-fill: #b91c1c; --button-cancel-background-fill-hover: #991b1b;
  --button-cancel-text-color: #ffffff; --button-cancel-text-color-hover: #ffffff;
}
.tab-container button.selected { color: #9a3412 !important }
/* At phone widths every tab fits in the row instead of hiding behind an overflow menu. */
@media (max-width: 480px) { .tab-container button { padding: 0 6px !important; font-size: 13px !important } }
.ctx-bar { display:flex; height:8px; background:#e5e7eb; border-radius:4px; overflow:hidden; margin-bottom:4px }
.ctx-prompt { background:#6366f1 } .ctx-history { background:#22c55e } .ctx-reply { background:#f59e0b }
.ctx-over { color:#b91c1c; font-weight:600 }
"""


def share_banner(record: Generation, served: bool) -> str:
    state = " · incomplete (stopped or interrupted)" if record.incomplete else ""
    lines = [f"**Shared generation** · {record.mode} · {html.escape(record.model)} · {record.created_at[:19]} UTC"
             f" · finish: {record.finish_reason}{state} · read-only"]
    if not served:
        lines.append(f"{html.escape(record.model)} is not served here, so a re-run uses the current model.")
    return "\n\n".join(lines)
