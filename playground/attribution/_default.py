"""The default index: nano-starcoder's training corpus, so its generations can be checked out of the box.

nano-starcoder was trained on the standard library of the interpreter that ran
the training (see ``training/corpus.py``) minus a held-out set, which the
training log lists. The corpus is rebuilt from the running interpreter's own
standard library; when that interpreter is not the one the log names, or the
held-out set comes out different, ``DefaultCorpus.matches_log`` says so.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

from playground.attribution._build import write_index
from playground.attribution._errors import AttributionUnavailable, IndexBuildError
from playground.attribution._index import SqliteIndex
from playground.attribution._schema import FORMAT_VERSION
from playground.attribution._types import BuildOptions, BuildSummary, Document

logger = logging.getLogger("playground.attribution")

NANO_TRAINING_LOG = Path(__file__).resolve().parents[2] / "models" / "nano-starcoder" / "training_log.json"
CPYTHON_REPO = "python/cpython"
CPYTHON_LICENSE = "PSF-2.0"


@dataclass(frozen=True)
class DefaultCorpus:
    """The training files of nano-starcoder as found on this machine."""

    name: str
    documents: tuple[Document, ...]  # paths as in the CPython repository, e.g. "Lib/json/decoder.py"
    python: str  # the running interpreter's version
    trained_on: str  # the version the training log names
    matches_log: bool  # same version, same number of training files, same held-out list


def default_corpus(training_log: Path = NANO_TRAINING_LOG, root: Path | None = None) -> DefaultCorpus:
    """Read the training log and collect the training files it describes from ``root`` (the stdlib)."""
    from training.corpus import load_stdlib  # the one definition of the training corpus, imported on use

    try:
        log = json.loads(training_log.read_text(encoding="utf-8"))
        trained_on, train_files = str(log["python"]), int(log["train_files"])
        held_out = sorted(str(path) for path in log["held_out_files"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IndexBuildError(f"The training log {training_log} cannot be read ({error}); it comes with "
                              "models/nano-starcoder, so restore it from the repository.") from None
    train, held = load_stdlib(root)
    python = platform.python_version()
    matches = python == trained_on and len(train) == train_files and sorted(f.path for f in held) == held_out
    if not matches:
        logger.warning("the default attribution index is approximate: nano-starcoder was trained on Python %s's "
                       "standard library (%d files), this is Python %s with %d", trained_on, train_files, python,
                       len(train))
    documents = tuple(Document(f"Lib/{item.path}", item.text, CPYTHON_REPO, CPYTHON_LICENSE) for item in train)
    name = f"nano-starcoder training corpus (CPython {python} standard library)"
    return DefaultCorpus(name, documents, python, trained_on, matches)


def default_index_path(data_dir: Path) -> Path:
    """Where the default index lives; the name changes with anything that changes its content or format."""
    return data_dir / f"attribution-nano-starcoder-py{platform.python_version()}-v{FORMAT_VERSION}.sqlite"


def build_default_index(out: Path, corpus: DefaultCorpus | None = None, *,
                        progress: bool | None = False) -> BuildSummary:
    corpus = corpus or default_corpus()
    return write_index(out, corpus.documents, BuildOptions(name=corpus.name, progress=progress))


def ensure_default_index(data_dir: Path, training_log: Path = NANO_TRAINING_LOG, root: Path | None = None) -> Path:
    """The default index's path, building it first when it is missing or unreadable (a few seconds).

    Safe to call from a background thread at start-up, and from two processes at
    once: each builds under a temporary name and the last rename wins.
    """
    path = default_index_path(data_dir)
    try:
        SqliteIndex.open(path).close()
        return path
    except AttributionUnavailable as error:
        if error.reason == "locked":
            raise
        logger.info("building the default attribution index at %s (%s)", path, error.reason)
    summary = build_default_index(path, default_corpus(training_log, root))
    logger.info("built %s: %d documents, %d chars in %.1f s", path, summary.documents, summary.chars,
                summary.seconds)
    return path
