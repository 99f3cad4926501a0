"""The default index: nano-starcoder's training corpus, so its generations can be checked out of the box.

The model's ``training_log.json`` says what it was trained on. A v2 log has a
``corpus`` section that lists every training file by package, with version and
licence, and a fingerprint of their contents: the standard library of the
training interpreter (``cpython``) plus permissively licensed packages from
``corpus-packages.txt``, both as ``corpus`` defines them. The files are looked for in:

- the running interpreter's standard library, for ``cpython``;
- the package cache that ``python -m training.packages fetch`` fills (the
  folder the log names), then the running environment when it has the very
  same version installed.

Files that cannot be found are left out and ``DefaultCorpus.matches_log`` says
so, as it does when a file's content differs from what trained the model. A v1
log (no ``corpus`` section: the standard library minus a held-out list) is
still read the old way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.attribution._build import write_index
from playground.attribution._errors import AttributionUnavailable, IndexBuildError
from playground.attribution._index import SqliteIndex
from playground.attribution._schema import FORMAT_VERSION
from playground.attribution._types import BuildOptions, BuildSummary, Document
from playground.attribution.corpus import STDLIB, STDLIB_LICENCE, corpus_fingerprint, load_stdlib, stdlib_root
from playground.attribution.corpus_packages import cache_base

logger = logging.getLogger("playground.attribution")

NANO_TRAINING_LOG = Path(__file__).resolve().parents[2] / "models" / "nano-starcoder" / "training_log.json"
CPYTHON_REPO = "python/cpython"


@dataclass(frozen=True)
class DefaultCorpus:
    """The training files of nano-starcoder as found on this machine."""

    name: str
    documents: tuple[Document, ...]  # stdlib: "Lib/json/decoder.py"; packages: "flask/app.py", repo "pypi:Flask==3.1.3"
    python: str  # the running interpreter's version
    trained_on: str  # the version the training log names
    matches_log: bool  # every training file found, with the content that trained the model
    missing: int = 0  # training files the log names that this machine lacks

    @property
    def key(self) -> str:
        """A digest of everything indexed, so a changed corpus gets a new index file."""
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(f"{doc.repo}\0{doc.path}\0{doc.license}\0".encode())
            digest.update(hashlib.sha256(doc.text.encode()).digest())
        return digest.hexdigest()[:16]


def _read_log(training_log: Path) -> dict[str, Any]:
    try:
        log = json.loads(training_log.read_text(encoding="utf-8"))
        if not isinstance(log, dict):
            raise ValueError("not a JSON object")
        str(log["python"])
        return log
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IndexBuildError(f"The training log {training_log} cannot be read ({error}); it comes with "
                              "models/nano-starcoder, so restore it from the repository.") from None


def default_corpus(training_log: Path = NANO_TRAINING_LOG, root: Path | None = None,
                   packages: Path | None = None) -> DefaultCorpus:
    """Collect the training files the log describes: stdlib from ``root``, packages from ``packages``."""
    log = _read_log(training_log)
    if "corpus" in log:
        return _v2_corpus(log, root, packages)
    return _v1_corpus(log, root)


def _v1_corpus(log: dict[str, Any], root: Path | None) -> DefaultCorpus:
    try:
        trained_on, train_files = str(log["python"]), int(log["train_files"])
        held_out = sorted(str(path) for path in log["held_out_files"])
    except (KeyError, TypeError, ValueError) as error:
        raise IndexBuildError(f"The training log lacks {error}; restore models/nano-starcoder from the "
                              "repository.") from None
    train, held = load_stdlib(root)
    python = platform.python_version()
    matches = python == trained_on and len(train) == train_files and sorted(f.path for f in held) == held_out
    if not matches:
        _warn_approximate(trained_on, f"{train_files} standard-library files", f"{len(train)}")
    documents = tuple(Document(f"Lib/{item.path}", item.text, CPYTHON_REPO, STDLIB_LICENCE) for item in train)
    name = f"nano-starcoder training corpus (CPython {python} standard library)"
    return DefaultCorpus(name, documents, python, trained_on, matches)


def _warn_approximate(trained_on: str, expected: str, found: str) -> None:
    logger.warning("the default attribution index is approximate: nano-starcoder was trained on Python %s "
                   "with %s; this machine has %s of them (fetch the packages with "
                   "'python -m training.packages fetch')", trained_on, expected, found)


Locate = Callable[[str], Path]


def _in_folder(folder: Path) -> Locate:
    return lambda relative: folder / relative


def _package_locator(package: str, version: str, folder: Path | None) -> Locate | None:
    """A function from a file's path in the package to where it is here, or None when the package is absent."""
    if folder is not None and any(folder.glob("*.dist-info")):
        return _in_folder(folder)
    try:
        installed = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if installed.version != version:
        return None
    return lambda relative: Path(str(installed.locate_file(relative)))


def _v2_corpus(log: dict[str, Any], root: Path | None, packages: Path | None) -> DefaultCorpus:
    try:
        corpus, trained_on = log["corpus"], str(log["python"])
        entries = [(str(e["package"]), str(e["version"]), str(e["licence"]), [str(p) for p in e["files"]])
                   for e in corpus["packages"]]
        fingerprint, folder_name = str(corpus["fingerprint"]), str(corpus["package_cache"])
    except (KeyError, TypeError) as error:
        raise IndexBuildError(f"The training log's corpus section lacks {error}; restore models/nano-starcoder "
                              "from the repository.") from None
    folder = packages or cache_base() / folder_name
    found: list[Document] = []
    read: list[tuple[str, str, str]] = []  # (package, path, text) in training order, for the fingerprint
    expected = 0
    for package, version, licence, files in entries:
        expected += len(files)
        if package == STDLIB:
            texts = _read_all(files, _in_folder(root or stdlib_root()))
            found += [Document(f"Lib/{path}", text, CPYTHON_REPO, licence) for path, text in texts]
        else:
            locate = _package_locator(package, version, folder if folder.is_dir() else None)
            texts = _read_all(files, locate) if locate else []
            found += [Document(path, text, f"pypi:{package}=={version}", licence) for path, text in texts]
        read += [(package, path, text) for path, text in texts]
    python = platform.python_version()
    matches = len(found) == expected and corpus_fingerprint(read) == fingerprint
    if not matches:
        _warn_approximate(trained_on, f"{expected} files from {len(entries)} packages", f"{len(found)}")
    name = (f"nano-starcoder training corpus (CPython {trained_on} standard library and "
            f"{len(entries) - 1} packages)")
    return DefaultCorpus(name, tuple(found), python, trained_on, matches, expected - len(found))


def _read_all(files: Iterable[str], locate: Locate) -> list[tuple[str, str]]:
    out = []
    for relative in files:
        try:
            out.append((relative, locate(relative).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue  # counted as missing by the caller
    return out


def default_index_path(data_dir: Path, corpus: DefaultCorpus) -> Path:
    """Where the default index lives; the name changes with anything that changes its content or format."""
    return data_dir / f"attribution-nano-starcoder-{corpus.key}-v{FORMAT_VERSION}.sqlite"


def build_default_index(out: Path, corpus: DefaultCorpus | None = None, *,
                        progress: bool | None = False) -> BuildSummary:
    corpus = corpus or default_corpus()
    return write_index(out, corpus.documents, BuildOptions(name=corpus.name, progress=progress))


def ensure_default_index(data_dir: Path, training_log: Path = NANO_TRAINING_LOG, root: Path | None = None,
                         packages: Path | None = None) -> Path:
    """The default index's path, building it first when it is missing or unreadable.

    Reading the corpus to name the index takes about a second; building it, only
    the first time, takes longer (see docs/attribution.md). Safe to call from a
    background thread at start-up, and from two processes at once: each builds
    under a temporary name and the last rename wins.
    """
    corpus = default_corpus(training_log, root, packages)
    path = default_index_path(data_dir, corpus)
    try:
        SqliteIndex.open(path).close()
        return path
    except AttributionUnavailable as error:
        if error.reason == "locked":
            raise
        logger.info("building the default attribution index at %s (%s)", path, error.reason)
    summary = build_default_index(path, corpus)
    logger.info("built %s: %d documents, %d chars in %.1f s", path, summary.documents, summary.chars,
                summary.seconds)
    return path
