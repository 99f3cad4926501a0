"""Value objects of code attribution: what goes into an index, and what a check reports.

Offsets are Python ``str`` indices into the checked text, so they are in
characters, not bytes, and line numbers are 1-based lines of the source document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_WINDOW = 50  # chars per fingerprint window; any verbatim span of 2w-1 = 99 chars is found
DEFAULT_MIN_CHARS = 50  # shortest span a check reports; spans from w to 2w-2 are found only sometimes
DEFAULT_MAX_FILE_BYTES = 1_000_000  # larger files are mostly data, minified or generated code
DEFAULT_MAX_POSTINGS = 256  # documents kept per window; more means boilerplate, counted as "at least"


@dataclass(frozen=True)
class Document:
    """One source document to index. ``path`` is relative to where it was found."""

    path: str
    text: str
    repo: str = ""
    license: str = ""


@dataclass(frozen=True)
class ColumnNames:
    """Where a JSONL or Parquet dump keeps each field; the first name present in a row wins.

    The defaults read The Stack's shards and common generic names. A user override
    (``--jsonl-columns content=text``) replaces the candidates for that field.
    """

    content: tuple[str, ...] = ("content", "text", "code")
    path: tuple[str, ...] = ("max_stars_repo_path", "path", "file_path")
    repo: tuple[str, ...] = ("max_stars_repo_name", "repo_name", "repository", "repo")
    license: tuple[str, ...] = ("max_stars_repo_licenses", "licenses", "license", "licence")


@dataclass(frozen=True)
class BuildOptions:
    """How to build an index; every field has a default that suits source code."""

    name: str = ""  # shown in reports; empty means the output file's stem
    window: int = DEFAULT_WINDOW
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_postings: int = DEFAULT_MAX_POSTINGS
    repo: str = ""  # for files found in folders, and dump rows without a repo column
    license: str = ""  # SPDX id, same fallback rule as repo
    columns: ColumnNames = field(default_factory=ColumnNames)
    progress: bool | None = None  # None: a bar on stderr when stderr is a terminal


@dataclass(frozen=True)
class BuildSummary:
    """What a build wrote, for the CLI and for logs."""

    path: str
    name: str
    documents: int
    chars: int
    input_bytes: int
    index_bytes: int
    seconds: float
    skipped: dict[str, int]  # reason -> count: binary, too_large, too_short, unreadable, ...


@dataclass(frozen=True)
class IndexInfo:
    """What an index covers; every index in a report is described by one."""

    name: str
    documents: int
    chars: int
    guaranteed_chars: int | None = None  # spans this long are always found; None if the store has no such bound

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """Where a matched span was found: the document and the 1-based lines the span covers there."""

    index: str
    path: str
    repo: str
    license: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Match:
    """A maximal span of the checked text that occurs verbatim in an indexed document.

    ``other_sources`` counts further documents holding the same span; when
    ``other_sources_exact`` is False it is a lower bound (the span is boilerplate
    found in very many documents, or shorter than the guaranteed length).
    """

    start: int
    end: int
    text: str
    source: Source
    other_sources: int = 0
    other_sources_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """The result of checking one text against every configured index; ``unavailable`` says why no
    check could be made (the index still building, damaged, or the check failed)."""

    indexes: tuple[IndexInfo, ...]
    checked_chars: int
    matches: tuple[Match, ...]
    unavailable: str | None = None

    @classmethod
    def not_made(cls, why: str) -> Report:
        return cls((), 0, (), why)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "indexes": [info.to_dict() for info in self.indexes],
            "checked_chars": self.checked_chars,
            "matches": [match.to_dict() for match in self.matches],
        }
        if self.unavailable is not None:
            data["unavailable"] = self.unavailable
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        matches = tuple(Match(**{**m, "source": Source(**m["source"])}) for m in data["matches"])
        return cls(tuple(IndexInfo(**i) for i in data["indexes"]), data["checked_chars"], matches,
                   data.get("unavailable"))
