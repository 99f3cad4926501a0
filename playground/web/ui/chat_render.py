"""Chat messages as the chat view shows them: code stays code, prose is never reinterpreted as Markdown.

A code model's reply is mostly code, often unfenced, and Markdown mangles it:
``__init__`` turns bold, ``# comment`` becomes a heading, indentation is lost.
So a message is shown as

* its own fenced blocks (```` ``` ````), as they are: the chat view highlights
  them and gives each a copy button;
* unfenced paragraphs that look like code, in a fence of our own (tildes);
* everything else as text with every Markdown character escaped.

The chat view hands its messages back on the next turn, so the shown form is
exactly invertible: ``raw(shown(text)) == text``. A shown message starts with
an invisible mark (on a line of its own when the message opens with a fence,
which must begin its line); text without it (an API client's own history) is
taken as it is.
"""

from __future__ import annotations

import re

MARK = "\u2063"  # INVISIBLE SEPARATOR: "this message was rendered here"
_MARK_LINE = MARK * 2 + "\n"  # the mark before a message that opens with a fence (prose escapes a MARK)
_ESCAPED = set("\\*_#>+-=[]()<|~!$.{}" + MARK)  # everything Markdown (and the view's LaTeX) could act on in prose
_CODE_START = re.compile(r"[ \t]|(def|class|import|from|return|if|for|while|elif|else|try|except|with|async|"
                         r"function|const|let|var|public|private|fn|func|package|#include|SELECT)\b|@\w|>>>|#")
_CODE_END = re.compile(r"[{};]\s*$|\):\s*$")
_FENCE = re.compile(r" {0,3}```")
_OUR_FENCE = re.compile(r"~{3,}\n?")


def shown(text: str) -> str:
    """``text`` as Markdown that shows it as written."""
    out = []
    for kind, part in _parts(text):
        if kind == "fenced":
            out.append(part)
        elif kind == "code":
            fence = "~" * max(3, 1 + max((len(run) for run in re.findall(r"~+", part)), default=0))
            out.append(f"{fence}\n{part}{fence}\n" if part.endswith("\n") else f"{fence}\n{part}\n{fence}")
        else:
            out.append("".join("\\" + c if c in _ESCAPED else c for c in part))
    body = "".join(out)
    return (_MARK_LINE if _FENCE.match(body) or _OUR_FENCE.match(body) else MARK) + body


def raw(message: str) -> str:
    """The text behind a shown message; a message not shown by ``shown`` is returned as it is."""
    if message.startswith(_MARK_LINE):
        body = message[len(_MARK_LINE):]
    elif message.startswith(MARK):
        body = message[len(MARK):]
    else:
        return message
    lines = body.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):  # the model's own fence, to its closing line
            end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines) - 1)
            out.extend(lines[i:end + 1])
            i = end + 1
        elif _OUR_FENCE.fullmatch(line):
            fence = line.rstrip("\n")
            end = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") == fence)
            body = "".join(lines[i + 1:end])
            out.append(body if lines[end].endswith("\n") else body[:-1])
            i = end + 1
        else:
            out.append(re.sub(r"\\(.)", r"\1", line, flags=re.DOTALL))
            i += 1
    return "".join(out)


def _parts(text: str) -> list[tuple[str, str]]:
    """The text in order as ("fenced" | "code" | "prose", text) parts that join into it."""
    parts: list[tuple[str, str]] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines) - 1)
            parts.append(("fenced", "".join(lines[i:end + 1])))
            i = end + 1
            continue
        end = i
        while end < len(lines) and lines[end].strip() and not _FENCE.match(lines[end]):
            end += 1
        if end == i:  # a blank line between paragraphs
            parts.append(("prose", lines[i]))
            i += 1
            continue
        paragraph = lines[i:end]
        code = any(_CODE_START.match(line) or _CODE_END.search(line) for line in paragraph)
        parts.append(("code" if code else "prose", "".join(paragraph)))
        i = end
    return parts
