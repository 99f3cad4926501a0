"""The attribution CLI: build an index, check a file against one.

    python -m playground.attribution build OUT.sqlite PATH... [--name N] [--repo R] [--license SPDX]
    python -m playground.attribution check INDEX.sqlite FILE [--min-chars N] [--json]

Exit status: 0 done (a check exits 0 with or without matches), 1 the index or
the inputs could not be used, 2 the command line is wrong. Errors are one
sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from playground.attribution._api import Attribution
from playground.attribution._build import build_index
from playground.attribution._index import SqliteIndex
from playground.attribution._types import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_POSTINGS,
    DEFAULT_MIN_CHARS,
    DEFAULT_WINDOW,
    BuildOptions,
    BuildSummary,
    ColumnNames,
    Match,
    Report,
)
from playground.errors import PlaygroundError

_PREVIEW_LINES = 4  # lines of each matched text shown by `check`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m playground.attribution",
                                     description="Find verbatim copies of an indexed corpus in generated code.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="index folders of source files and JSONL/Parquet dumps")
    build.add_argument("out", type=Path, help="index file to write (replaced when the build succeeds)")
    build.add_argument("paths", type=Path, nargs="+", help="folders, source files, .jsonl[.gz] or .parquet dumps")
    build.add_argument("--name", default="", help="name shown in reports (default: OUT's file name)")
    build.add_argument("--repo", default="", help="repository for files in folders and rows without one")
    build.add_argument("--license", default="", help="SPDX licence id, with the same fallback rule as --repo")
    build.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                       help=f"chars per fingerprint; spans of 2*W-1 chars are always found (default {DEFAULT_WINDOW})")
    build.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES,
                       help=f"skip larger files and rows (default {DEFAULT_MAX_FILE_BYTES})")
    build.add_argument("--max-postings", type=int, default=DEFAULT_MAX_POSTINGS,
                       help=f"documents kept per window; beyond it a window is boilerplate (default "
                            f"{DEFAULT_MAX_POSTINGS})")
    build.add_argument("--jsonl-columns", "--columns", type=_columns, default=ColumnNames(), metavar="FIELD=COLUMN,...",
                       help="dump column names, e.g. content=text,path=file,repo=repo_name,license=license "
                            "(default: The Stack's, then common names)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar (off anyway when not a terminal)")
    check = commands.add_parser("check", help="print the spans of FILE found verbatim in the index")
    check.add_argument("index", type=Path, help="an index file made by `build`")
    check.add_argument("file", help="the text to check; - reads stdin")
    check.add_argument("--min-chars", type=int, default=DEFAULT_MIN_CHARS,
                       help=f"shortest span to report (default {DEFAULT_MIN_CHARS})")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _columns(value: str) -> ColumnNames:
    columns = ColumnNames()
    for pair in filter(None, value.split(",")):
        field, _, column = pair.partition("=")
        if field.strip() not in ("content", "path", "repo", "license") or not column.strip():
            raise argparse.ArgumentTypeError(f"{pair!r} is not FIELD=COLUMN with FIELD one of content, path, repo, "
                                             "license")
        columns = replace(columns, **{field.strip(): (column.strip(),)})
    return columns


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            options = BuildOptions(name=args.name, window=args.window, max_file_bytes=args.max_file_bytes,
                                   max_postings=args.max_postings, repo=args.repo, license=args.license,
                                   columns=args.jsonl_columns, progress=False if args.no_progress else None)
            print(_summary_text(build_index(args.out, args.paths, options)))
        else:
            text = _read_text(args.file)
            attribution = Attribution([SqliteIndex.open(args.index)], min_chars=args.min_chars)
            try:
                report = attribution.check(text)
            finally:
                attribution.close()
            print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else _report_text(report))
    except PlaygroundError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


def _read_text(name: str) -> str:
    try:
        if name == "-":
            return sys.stdin.read()
        with open(name, encoding="utf-8", newline="") as stream:  # newline="": offsets count CRLF as two chars
            return stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise PlaygroundError(f"Cannot read {name} as UTF-8 text ({error}); check the path.") from None


def _summary_text(summary: BuildSummary) -> str:
    ratio = summary.index_bytes / max(1, summary.chars)
    lines = [f"indexed {summary.documents:,} documents ({summary.chars:,} chars, {summary.input_bytes / 1e6:,.1f} MB "
             f"read) in {summary.seconds:,.1f} s into {summary.path} ({summary.index_bytes / 1e6:,.1f} MB, "
             f"{ratio:.2f} bytes per char)"]
    if summary.skipped:
        skipped = sorted(summary.skipped.items())
        lines.append("skipped: " + ", ".join(f"{count:,} {reason}" for reason, count in skipped))
    return "\n".join(lines)


def _report_text(report: Report) -> str:
    names = "; ".join(f"{info.name} ({info.documents:,} documents)" for info in report.indexes)
    lines = [f"{len(report.matches)} match(es) in {report.checked_chars:,} chars checked against {names}"]
    for match in report.matches:
        lines.extend(_match_text(match))
    return "\n".join(lines)


def _match_text(match: Match) -> list[str]:
    source = match.source
    where = f"{source.path} lines {source.start_line}-{source.end_line}"
    origin = ", ".join(part for part in (source.repo, source.license) if part)
    others = ""
    if match.other_sources or not match.other_sources_exact:
        others = f"; {'at least ' if not match.other_sources_exact else ''}{match.other_sources} other document(s)"
    lines = [f"\nchars {match.start}-{match.end} ({match.end - match.start} chars) = {where}"
             f"{f' [{origin}]' if origin else ''}{others}"]
    body = match.text.splitlines()
    lines.extend(f"    | {line}" for line in body[:_PREVIEW_LINES])
    if len(body) > _PREVIEW_LINES:
        lines.append(f"    | ... ({len(body) - _PREVIEW_LINES} more lines)")
    return lines
