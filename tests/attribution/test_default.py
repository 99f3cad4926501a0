"""The default index of nano-starcoder's training corpus, built from a stand-in stdlib and package cache."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import pytest

from playground.attribution import SqliteIndex, default_corpus, default_index_path, ensure_default_index
from playground.attribution._default import NANO_TRAINING_LOG
from playground.attribution.corpus import corpus_fingerprint, is_held_out

from .conftest import fenced

CODE = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n" for i in range(30))
STDLIB_FILES = ("json_like.py", "zlib_like.py")
PACKAGE_FILES = ("tinyhttp/__init__.py", "tinyhttp/client.py")


def _text(name: str) -> str:
    return f"# {name}\n" + CODE


def _v2_log(log: Path, texts: dict[str, str] | None = None) -> None:
    """A v2 training log naming two stdlib files and one package, fingerprinted over ``texts``."""
    texts = texts or {}
    triples = [("cpython", n, texts.get(n, _text(n))) for n in STDLIB_FILES]
    triples += [("tinyhttp", n, texts.get(n, _text(n))) for n in PACKAGE_FILES]
    corpus = {
        "package_cache": "packages-test",
        "fingerprint": corpus_fingerprint(triples),
        "packages": [
            {"package": "cpython", "version": "3.11.7", "licence": "PSF-2.0", "files": list(STDLIB_FILES)},
            {"package": "tinyhttp", "version": "1.2.3", "licence": "MIT", "files": list(PACKAGE_FILES)},
        ],
    }
    log.write_text(json.dumps({"python": platform.python_version(), "corpus": corpus}))


@pytest.fixture()
def fake_corpus(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(stdlib root, package cache, v2 training log): a held-out stdlib file and a test module are not listed."""
    root, cache = tmp_path / "lib", tmp_path / "packages"
    (root / "test").mkdir(parents=True)
    held = next(f"mod{i}.py" for i in range(1000) if is_held_out(f"mod{i}.py"))
    for name in (*STDLIB_FILES, held, "test/test_json_like.py"):
        (root / name).write_text(_text(name), encoding="utf-8")
    (cache / "tinyhttp-1.2.3.dist-info").mkdir(parents=True)
    (cache / "tinyhttp").mkdir()
    for name in PACKAGE_FILES:
        (cache / name).write_text(_text(name), encoding="utf-8")
    log = tmp_path / "training_log.json"
    _v2_log(log)
    return root, cache, log


def test_the_corpus_is_the_training_files_the_log_lists(fake_corpus: tuple[Path, Path, Path]) -> None:
    root, cache, log = fake_corpus
    corpus = default_corpus(log, root, cache)
    assert [(d.path, d.repo, d.license) for d in corpus.documents] == [
        ("Lib/json_like.py", "python/cpython", "PSF-2.0"),
        ("Lib/zlib_like.py", "python/cpython", "PSF-2.0"),
        ("tinyhttp/__init__.py", "pypi:tinyhttp==1.2.3", "MIT"),
        ("tinyhttp/client.py", "pypi:tinyhttp==1.2.3", "MIT"),
    ]
    assert corpus.matches_log and corpus.missing == 0 and "1 packages" in corpus.name


def test_a_missing_package_is_left_out_and_flagged(fake_corpus: tuple[Path, Path, Path], tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    root, _, log = fake_corpus
    with caplog.at_level(logging.WARNING, logger="playground.attribution"):
        corpus = default_corpus(log, root, tmp_path / "no-cache")
    assert [d.repo for d in corpus.documents] == ["python/cpython"] * 2
    assert not corpus.matches_log and corpus.missing == 2
    assert "approximate" in caplog.text and "training.packages fetch" in caplog.text


def test_changed_content_is_flagged_and_gets_its_own_index(fake_corpus: tuple[Path, Path, Path],
                                                          tmp_path: Path) -> None:
    root, cache, log = fake_corpus
    before = default_corpus(log, root, cache)
    (cache / "tinyhttp" / "client.py").write_text("print('edited')\n" + CODE, encoding="utf-8")
    after = default_corpus(log, root, cache)
    assert not after.matches_log and after.missing == 0
    assert default_index_path(tmp_path, after) != default_index_path(tmp_path, before)


def test_ensure_builds_once_then_reuses(fake_corpus: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, cache, log = fake_corpus
    data = tmp_path / "data"
    path = ensure_default_index(data, log, root, cache)
    assert path == default_index_path(data, default_corpus(log, root, cache))
    built = path.stat().st_mtime_ns
    assert ensure_default_index(data, log, root, cache) == path and path.stat().st_mtime_ns == built
    index = SqliteIndex.open(path)
    (match,) = index.check(fenced(_text("tinyhttp/client.py")[:200]))
    assert (match.source.path, match.source.start_line) == ("tinyhttp/client.py", 1)
    assert (match.source.repo, match.source.license) == ("pypi:tinyhttp==1.2.3", "MIT")
    assert index.describe().name.startswith("nano-starcoder training corpus")
    index.close()


def test_a_damaged_default_index_is_rebuilt(fake_corpus: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, cache, log = fake_corpus
    path = default_index_path(tmp_path, default_corpus(log, root, cache))
    path.write_bytes(b"garbage" * 100)
    assert ensure_default_index(tmp_path, log, root, cache) == path
    SqliteIndex.open(path).close()


def test_a_v1_log_still_reads_the_standard_library(fake_corpus: tuple[Path, Path, Path]) -> None:
    root, _, log = fake_corpus
    held = next(p.name for p in root.glob("mod*.py"))
    log.write_text(json.dumps({"python": platform.python_version(), "train_files": 2, "held_out_files": [held]}))
    corpus = default_corpus(log, root)
    assert [d.path for d in corpus.documents] == ["Lib/json_like.py", "Lib/zlib_like.py"]
    assert corpus.matches_log


def test_the_shipped_training_log_names_what_the_helper_reads() -> None:
    log = json.loads(NANO_TRAINING_LOG.read_text(encoding="utf-8"))
    assert isinstance(log["python"], str)
    if "corpus" not in log:  # v1
        assert isinstance(log["train_files"], int) and isinstance(log["held_out_files"], list)
        return
    corpus = log["corpus"]
    assert isinstance(corpus["fingerprint"], str) and isinstance(corpus["package_cache"], str)
    assert sum(len(entry["files"]) for entry in corpus["packages"]) == log["train_files"]
    assert all({"package", "version", "licence", "files"} <= set(entry) for entry in corpus["packages"])
