"""The default index of nano-starcoder's training corpus, built from a small stand-in standard library."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import pytest

from playground.attribution import SqliteIndex, default_corpus, default_index_path, ensure_default_index
from playground.attribution._default import NANO_TRAINING_LOG
from training.corpus import is_held_out

from .conftest import fenced

CODE = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n" for i in range(30))


@pytest.fixture()
def fake_stdlib(tmp_path: Path) -> tuple[Path, Path]:
    """A standard library of three modules, one of them held out, and a test package; and a log saying so."""
    root = tmp_path / "lib"
    (root / "test").mkdir(parents=True)
    held = next(f"mod{i}.py" for i in range(1000) if is_held_out(f"mod{i}.py"))
    for name in ("json_like.py", "zlib_like.py", held, "test/test_json_like.py"):
        (root / name).write_text(f"# {name}\n" + CODE, encoding="utf-8")
    log = tmp_path / "training_log.json"
    log.write_text(json.dumps({"python": platform.python_version(), "train_files": 2, "held_out_files": [held]}))
    return root, log


def test_the_corpus_is_the_training_files_the_log_describes(fake_stdlib: tuple[Path, Path]) -> None:
    root, log = fake_stdlib
    corpus = default_corpus(log, root)
    assert [d.path for d in corpus.documents] == ["Lib/json_like.py", "Lib/zlib_like.py"]
    assert {(d.repo, d.license) for d in corpus.documents} == {("python/cpython", "PSF-2.0")}
    assert corpus.matches_log and corpus.trained_on == corpus.python


def test_a_different_interpreter_is_flagged(fake_stdlib: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    root, log = fake_stdlib
    log.write_text(json.dumps({"python": "3.0.0", "train_files": 2, "held_out_files": []}))
    with caplog.at_level(logging.WARNING, logger="playground.attribution"):
        assert not default_corpus(log, root).matches_log
    assert "approximate" in caplog.text


def test_ensure_builds_once_then_reuses(fake_stdlib: tuple[Path, Path], tmp_path: Path) -> None:
    root, log = fake_stdlib
    path = ensure_default_index(tmp_path / "data", log, root)
    assert path == default_index_path(tmp_path / "data")
    built = path.stat().st_mtime_ns
    assert ensure_default_index(tmp_path / "data", log, root) == path and path.stat().st_mtime_ns == built
    index = SqliteIndex.open(path)
    (match,) = index.check(fenced("# zlib_like.py\n" + CODE[:200]))
    assert (match.source.path, match.source.start_line, match.source.repo) == ("Lib/zlib_like.py", 1, "python/cpython")
    assert index.describe().name.startswith("nano-starcoder training corpus")
    index.close()


def test_a_damaged_default_index_is_rebuilt(fake_stdlib: tuple[Path, Path], tmp_path: Path) -> None:
    root, log = fake_stdlib
    path = default_index_path(tmp_path)
    path.write_bytes(b"garbage" * 100)
    assert ensure_default_index(tmp_path, log, root) == path
    SqliteIndex.open(path).close()


def test_the_shipped_training_log_names_what_the_helper_reads() -> None:
    log = json.loads(NANO_TRAINING_LOG.read_text(encoding="utf-8"))
    assert isinstance(log["python"], str) and isinstance(log["train_files"], int)
    assert isinstance(log["held_out_files"], list)
