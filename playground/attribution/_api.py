"""The interface the app uses: a ``CodeIndex`` protocol, and ``Attribution`` over several indexes.

Any store can plug in by implementing ``CodeIndex`` (a larger service, say);
``SqliteIndex`` is the one shipped, and ``MemoryIndex`` the test double.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from playground.attribution._errors import AttributionUnavailable
from playground.attribution._index import DEFAULT_BUSY_TIMEOUT_S, SqliteIndex
from playground.attribution._types import DEFAULT_MIN_CHARS, IndexInfo, Match, Report


@runtime_checkable
class CodeIndex(Protocol):
    """A corpus that can say where a text was copied from.

    ``check`` returns every maximal span of ``text`` of at least ``min_chars``
    chars found verbatim in the corpus, with offsets into ``text`` itself, and
    raises ``AttributionUnavailable`` when the store cannot answer.
    """

    def describe(self) -> IndexInfo: ...

    def check(self, text: str, *, min_chars: int = DEFAULT_MIN_CHARS) -> list[Match]: ...

    def close(self) -> None: ...


class Attribution:
    """Checks texts against every configured index and reports all matches in one ``Report``."""

    def __init__(self, indexes: Sequence[CodeIndex], *, min_chars: int = DEFAULT_MIN_CHARS):
        self.indexes = list(indexes)
        self.min_chars = min_chars

    @classmethod
    def open(cls, paths: Sequence[Path | str], *, min_chars: int = DEFAULT_MIN_CHARS,
             busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Attribution:
        """Open index files; if one fails, those already open are closed and the error is raised."""
        opened: list[CodeIndex] = []
        try:
            for path in paths:
                opened.append(SqliteIndex.open(path, busy_timeout_s=busy_timeout_s))
        except AttributionUnavailable:
            for index in opened:
                index.close()
            raise
        return cls(opened, min_chars=min_chars)

    def describe(self) -> tuple[IndexInfo, ...]:
        return tuple(index.describe() for index in self.indexes)

    def check(self, text: str) -> Report:
        """Matches from all indexes, ordered by where they start in ``text`` (longest first)."""
        matches: list[Match] = []
        for index in self.indexes:
            matches.extend(index.check(text, min_chars=self.min_chars))
        matches.sort(key=lambda match: (match.start, -match.end))
        return Report(self.describe(), len(text), tuple(matches))

    def close(self) -> None:
        for index in self.indexes:
            index.close()
