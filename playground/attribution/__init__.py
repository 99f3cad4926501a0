"""Code attribution: find where a generated text copies an indexed corpus verbatim.

Public surface (the underscored modules are implementation):

    summary = build_index(Path("corpus.sqlite"), [Path("src/"), Path("dump.jsonl")], BuildOptions(license="MIT"))
    attribution = Attribution.open(["corpus.sqlite"])          # AttributionUnavailable if unreadable
    report = attribution.check(generated_text)                # Report(indexes, checked_chars, matches)
    report.to_dict()                                          # JSON-ready
    path = ensure_default_index(data_dir)                     # nano-starcoder's training corpus

What that corpus is (files, splits, fingerprint, package list and cache) is
defined in the public modules ``corpus`` and ``corpus_packages``; the training
scripts import it from there.

Guarantee: with window w (default 50), every span of 2w-1 = 99 chars or more
that occurs verbatim in an indexed document is reported; shorter spans down to
``min_chars`` are reported when found; nothing is reported that was not
compared character for character (line endings aside: CRLF counts as LF).

CLI: ``python -m playground.attribution {build,check}``.
"""

from playground.attribution._api import Attribution, CodeIndex
from playground.attribution._build import build_index, write_index
from playground.attribution._default import (
    DefaultCorpus,
    build_default_index,
    default_corpus,
    default_index_path,
    ensure_default_index,
)
from playground.attribution._errors import AttributionUnavailable, IndexBuildError
from playground.attribution._index import SqliteIndex
from playground.attribution._memory import MemoryIndex
from playground.attribution._schema import FORMAT_VERSION
from playground.attribution._types import (
    DEFAULT_MIN_CHARS,
    DEFAULT_WINDOW,
    BuildOptions,
    BuildSummary,
    ColumnNames,
    Document,
    IndexInfo,
    Match,
    Report,
    Source,
)

__all__ = [
    "DEFAULT_MIN_CHARS",
    "DEFAULT_WINDOW",
    "FORMAT_VERSION",
    "Attribution",
    "AttributionUnavailable",
    "BuildOptions",
    "BuildSummary",
    "CodeIndex",
    "ColumnNames",
    "DefaultCorpus",
    "Document",
    "IndexBuildError",
    "IndexInfo",
    "Match",
    "MemoryIndex",
    "Report",
    "Source",
    "SqliteIndex",
    "build_default_index",
    "build_index",
    "default_corpus",
    "default_index_path",
    "ensure_default_index",
    "write_index",
]
