"""Build inputs: what folders yield and skip, JSONL and Parquet dumps with their columns, atomic output."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from playground.attribution import (
    BuildOptions,
    ColumnNames,
    IndexBuildError,
    SqliteIndex,
    build_index,
)

from .conftest import fenced

BODY = "".join(f"def function_{i}(argument):\n    return argument * {i} + {i * 7}\n\n" for i in range(40))
OPTIONS = BuildOptions(progress=False, repo="example/repo", license="MIT")


def _paths(index_path: Path) -> list[str]:
    index = SqliteIndex.open(index_path)
    try:
        return [str(row[0]) for row in index._db.execute("SELECT path FROM docs ORDER BY path")]
    finally:
        index.close()


def test_folders_skip_binary_undecodable_oversized_and_looping_entries(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "pkg" / "deeper").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text(BODY, encoding="utf-8")
    (root / "pkg" / "deeper" / "b.js").write_text(BODY.replace("def", "function"), encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(200))
    (root / "latin1.txt").write_bytes(("caf\xe9 " * 40).encode("latin-1"))
    (root / "huge.py").write_text(BODY * 10, encoding="utf-8")
    (root / "tiny.py").write_text("x = 1\n", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(BODY, encoding="utf-8")
    (root / "pkg" / "deeper" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.py").symlink_to(root / "gone.py")
    options = BuildOptions(progress=False, max_file_bytes=len(BODY) * 2)
    summary = build_index(tmp_path / "out.sqlite", [root], options)
    assert _paths(tmp_path / "out.sqlite") == ["pkg/a.py", "pkg/deeper/b.js"]
    assert summary.skipped == {"binary": 1, "not_utf8": 1, "too_large": 1, "too_short": 1, "symlink_loop": 1,
                               "unreadable": 1}
    assert summary.documents == 2 and summary.chars == len(BODY) * 2 + 40 * 5


def test_paths_are_relative_to_each_input(tmp_path: Path) -> None:
    (tmp_path / "one" / "x").mkdir(parents=True)
    (tmp_path / "one" / "x" / "a.py").write_text(BODY, encoding="utf-8")
    (tmp_path / "single.py").write_text(BODY + "# single\n", encoding="utf-8")
    build_index(tmp_path / "out.sqlite", [tmp_path / "one", tmp_path / "single.py"], OPTIONS)
    assert _paths(tmp_path / "out.sqlite") == ["single.py", "x/a.py"]


def _stack_rows() -> list[dict[str, Any]]:
    return [
        {"content": BODY, "max_stars_repo_path": "src/one.py", "max_stars_repo_name": "octo/one",
         "max_stars_repo_licenses": ["MIT", "Apache-2.0"]},
        {"content": BODY.replace("argument", "arg"), "max_stars_repo_path": "two.py", "max_stars_repo_name": "octo/two",
         "max_stars_repo_licenses": []},
    ]


def test_stack_shaped_jsonl_and_gzip(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps(row) for row in _stack_rows()) + "\n"
    (tmp_path / "dump.jsonl").write_text(lines, encoding="utf-8")
    with gzip.open(tmp_path / "dump.jsonl.gz", "wt", encoding="utf-8") as stream:
        stream.write(lines)
    for name in ("dump.jsonl", "dump.jsonl.gz"):
        build_index(tmp_path / "out.sqlite", [tmp_path / name], OPTIONS)
        index = SqliteIndex.open(tmp_path / "out.sqlite")
        (first,) = index.check(fenced(BODY[100:400]))
        (second,) = index.check(fenced(BODY.replace("argument", "arg")[100:400]))
        index.close()
        assert (first.source.path, first.source.repo, first.source.license) == ("src/one.py", "octo/one",
                                                                                "MIT, Apache-2.0")
        assert (second.source.repo, second.source.license) == ("octo/two", "MIT")  # empty list: the default


def test_custom_columns_and_rows_without_content(tmp_path: Path) -> None:
    rows = [{"source_text": BODY, "file": "f.py", "origin": "me/mine"}, {"nothing": 1}, "not an object"]
    (tmp_path / "dump.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n{broken\n", encoding="utf-8")
    columns = ColumnNames(content=("source_text",), path=("file",), repo=("origin",))
    summary = build_index(tmp_path / "out.sqlite", [tmp_path / "dump.jsonl"], BuildOptions(columns=columns,
                                                                                            progress=False))
    assert summary.documents == 1 and summary.skipped == {"no_content": 1, "bad_row": 2}
    with pytest.raises(IndexBuildError, match="--jsonl-columns content=NAME"):
        build_index(tmp_path / "out.sqlite", [tmp_path / "dump.jsonl"], OPTIONS)


def test_parquet_dump(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    parquet = importlib.import_module("pyarrow.parquet")
    parquet.write_table(pyarrow.Table.from_pylist(_stack_rows()), tmp_path / "dump.parquet")
    summary = build_index(tmp_path / "out.sqlite", [tmp_path / "dump.parquet"], OPTIONS)
    assert summary.documents == 2
    assert _paths(tmp_path / "out.sqlite") == ["src/one.py", "two.py"]


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dump.parquet").write_bytes(b"PAR1")
    real_import = importlib.import_module

    def no_pyarrow(name: str, package: str | None = None) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_pyarrow)
    with pytest.raises(IndexBuildError, match="pip install pyarrow=="):
        build_index(tmp_path / "out.sqlite", [tmp_path / "dump.parquet"], OPTIONS)


def test_a_failed_build_leaves_the_old_index_and_no_temporary_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BODY, encoding="utf-8")
    build_index(tmp_path / "out" / "index.sqlite", [tmp_path / "a.py"], OPTIONS)
    before = (tmp_path / "out" / "index.sqlite").read_bytes()
    with pytest.raises(IndexBuildError, match="does not exist"):
        build_index(tmp_path / "out" / "index.sqlite", [tmp_path / "a.py", tmp_path / "missing"], OPTIONS)
    (tmp_path / "bad.jsonl").write_text('{"other": 1}\n', encoding="utf-8")
    with pytest.raises(IndexBuildError):
        build_index(tmp_path / "out" / "index.sqlite", [tmp_path / "a.py", tmp_path / "bad.jsonl"], OPTIONS)
    assert (tmp_path / "out" / "index.sqlite").read_bytes() == before
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["index.sqlite"]
