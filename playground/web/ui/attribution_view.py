"""Attribution under a result: one line that says what was found, the matched spans highlighted, and
each source with its lines and licence. Everything from the model or an index is escaped: file names
and code render as text, never as markup."""

from __future__ import annotations

import html
from typing import Any

from playground.attribution import Report

CSS = """
.attr-line { margin: 4px 0 } .attr-warn { color:#b45309; font-weight:600 }
.attr-view mark { background:#fde68a; padding:0 } .attr-view pre { white-space:pre-wrap; margin:4px 0 8px }
.attr-source { font-size:90%; color:#4b5563 }
"""


def attribution_html(checked_report: Report | None, checked: str) -> str:
    """The attribution of ``checked`` (the generated part) as HTML; "" when attribution is off."""
    if checked_report is None:
        return ""
    report = checked_report.to_dict()
    if "unavailable" in report:
        return f'<div class="attr-line">Attribution not checked: {html.escape(str(report["unavailable"]))}</div>'
    matches = report.get("matches", [])
    indexes = report.get("indexes", [])
    if not matches:
        names = ", ".join(html.escape(str(i.get("name", ""))) for i in indexes)
        files = sum(int(i.get("documents", 0)) for i in indexes)
        return f'<div class="attr-line">No verbatim match in {names} ({files:,} files).</div>'
    return _summary(matches) + _details(matches, checked)


def _summary(matches: list[dict[str, Any]]) -> str:
    chars = sum(m["end"] - m["start"] for m in matches)
    first = matches[0]["source"]
    where = (f"{html.escape(first['path'])} lines {first['start_line']}–{first['end_line']} "
             f"({html.escape(first['license'])})")
    spans = f"{len(matches)} span{'s' if len(matches) != 1 else ''}"
    return (f'<div class="attr-line attr-warn" role="status">⚠ {spans}, {chars:,} characters, match '
            f"{where}. Check the licence before you use this code.</div>")


def _details(matches: list[dict[str, Any]], checked: str) -> str:
    marked, last = [], 0
    for match in matches:
        start, end = max(match["start"], last), match["end"]
        if start >= end:
            continue
        marked.append(html.escape(checked[last:start]) + f"<mark>{html.escape(checked[start:end])}</mark>")
        last = end
    marked.append(html.escape(checked[last:]))
    sources = "".join(_source(m) for m in matches)
    return (f'<details class="attr-view"><summary>Matched spans and their sources</summary>'
            f"<pre>{''.join(marked)}</pre>{sources}</details>")


def _source(match: dict[str, Any]) -> str:
    source = match["source"]
    others = match.get("other_sources", 0)
    more = f" · also in {'at least ' if not match.get('other_sources_exact', True) else ''}{others} other files" \
        if others else ""
    return (f'<div class="attr-source">{html.escape(source["path"])} lines {source["start_line"]}–'
            f'{source["end_line"]} · {html.escape(source["repo"])} · licence {html.escape(source["license"])} · '
            f'{html.escape(source["index"])}{more}</div><pre>{html.escape(match["text"])}</pre>')
