"""Fixtures for attribution tests: copies of real stdlib files, built into small indexes in temp dirs.

Texts the tests plant are wrapped in ``≈`` chars, which no indexed file holds, so
a found span starts and ends exactly where it was planted.
"""

from __future__ import annotations

import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.attribution import BuildOptions, SqliteIndex, build_index

STDLIB = Path(sysconfig.get_paths()["stdlib"])
COPIED = ("textwrap.py", "shlex.py", "heapq.py", "bisect.py", "colorsys.py")
FENCE = "≈"  # in no indexed file


def lines(text: str, first: int, last: int) -> str:
    """Lines ``first`` to ``last`` (1-based, inclusive) of ``text``, with their line endings."""
    return "".join(text.splitlines(keepends=True)[first - 1 : last])


def fenced(planted: str, before: str = "def generated():\n    pass\n", after: str = "\nprint('done')\n") -> str:
    return before + FENCE + planted + FENCE + after


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five stdlib files as they are, one saved with CRLF line endings and one indented with tabs."""
    root = tmp_path_factory.mktemp("corpus")
    for name in COPIED:
        shutil.copy(STDLIB / name, root / name)
    (root / "windows").mkdir()
    crlf = (STDLIB / "getopt.py").read_text(encoding="utf-8").replace("\n", "\r\n")
    (root / "windows" / "getopt_crlf.py").write_bytes(crlf.encode("utf-8"))
    tabbed = (STDLIB / "fnmatch.py").read_text(encoding="utf-8").replace("    ", "\t")
    (root / "tabbed_fnmatch.py").write_text(tabbed, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def index_path(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "stdlib-copies.sqlite"
    build_index(out, [corpus_dir], BuildOptions(name="copies", repo="python/cpython", license="PSF-2.0",
                                                progress=False))
    return out


@pytest.fixture()
def index(index_path: Path) -> Iterator[SqliteIndex]:
    opened = SqliteIndex.open(index_path)
    yield opened
    opened.close()
