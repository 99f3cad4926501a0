"""Fixtures for the store tests: every store lives in its own temp dir, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.store import ShareStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "shares.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[ShareStore]:
    opened = ShareStore.open(db_path)
    yield opened
    opened.close()
