"""What nano-starcoder's corpus is: which files, which split, and the fingerprint that identifies them.

The corpus is the standard library of the interpreter at hand plus the
permissively licensed packages pinned in ``corpus-packages.txt`` (see
``corpus_packages``). It is defined here, in the product, because the default
attribution index must find exactly the files the model trained on; the
training scripts import this definition rather than keep their own.

Two held-out splits:

- standard-library files by a hash of their relative path (4%, the same files
  v1 held out), so the split does not depend on the order files are listed in;
- whole packages, those the list marks ``held-out``: they reach neither
  training nor the tokenizer, so evaluation scores code from a codebase the
  model has never seen.

Tests, vendored copies, generated or huge files and non-UTF-8 files are left
out; exact duplicates are kept once, and a training file identical to a
held-out one is dropped.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from playground.attribution.corpus_packages import Distribution, distributions

# Test suites are large, repetitive and full of deliberately odd code; vendored
# copies belong to another project (and would leak held-out packages back in).
_EXCLUDED_PARTS = {
    "test", "tests", "testing", "_tests", "idle_test", "site-packages", "__pycache__",
    "_vendor", "vendor", "vendored", "_vendored", "extern", "_distutils",
}
HELD_OUT_PERCENT = 4
MAX_FILE_BYTES = 120_000  # past this, Python files are mostly tables and generated data
MAX_LINE_CHARS = 1_000  # a longer line means data or minified code, not something to learn from
MAX_DIGIT_SHARE = 0.2  # Unicode tables, code pages and test vectors: numbers, not code
PACKAGE_BYTES_CAP = 1_500_000  # so a few big frameworks do not drown the others
STDLIB = "cpython"  # the package name training logs give the standard library
STDLIB_LICENCE = "PSF-2.0"


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to its root: "json/decoder.py" in the stdlib, "flask/app.py" in a package
    text: str
    package: str = STDLIB
    version: str = field(default_factory=lambda: sys.version.split()[0])
    licence: str = STDLIB_LICENCE


@dataclass(frozen=True)
class Corpus:
    train: list[SourceFile]
    held_out_stdlib: list[SourceFile]
    held_out_packages: list[SourceFile]
    skipped: dict[str, int]  # reason -> files left out


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def is_held_out(relative_path: str) -> bool:
    digest = hashlib.sha256(relative_path.encode()).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def _is_excluded(relative: Path) -> bool:
    name = relative.name
    return bool(_EXCLUDED_PARTS.intersection(relative.parts[:-1])) or name.startswith("test_") \
        or name.endswith("_test.py") or name in ("conftest.py", "tests.py")


def read_source(path: Path, skipped: dict[str, int] | None = None) -> str | None:
    """The file's text when it is worth training on; otherwise None, counting why in ``skipped``."""
    reason = None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            reason = "too_large"
        else:
            text = path.read_text(encoding="utf-8")
            if not text.strip():
                reason = "empty"
            elif max(len(line) for line in text.splitlines()) > MAX_LINE_CHARS:
                reason = "long_lines"
            elif sum(ch.isdigit() for ch in text) > MAX_DIGIT_SHARE * len(text):
                reason = "mostly_numbers"
    except (UnicodeDecodeError, OSError):
        reason = "unreadable"
    if reason is not None:
        if skipped is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
        return None
    return text


def load_stdlib(root: Path | None = None) -> tuple[list[SourceFile], list[SourceFile]]:
    """Return (train, held_out) standard-library files, sorted by path."""
    root = root or stdlib_root()
    train: list[SourceFile] = []
    held_out: list[SourceFile] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        # The stdlib keeps its v1 rules (no size or line filter), so v1's split stays comparable.
        if _EXCLUDED_PARTS.intersection(relative.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        item = SourceFile(relative.as_posix(), text)
        (held_out if is_held_out(item.path) else train).append(item)
    return train, held_out


def load_package(cache: Path, dist: Distribution, skipped: dict[str, int]) -> list[SourceFile]:
    """The distribution's usable files in path order, up to PACKAGE_BYTES_CAP characters."""
    files, total = [], 0
    for relative in dist.files:
        if _is_excluded(Path(relative)):
            skipped["tests_or_vendored"] = skipped.get("tests_or_vendored", 0) + 1
            continue
        text = read_source(cache / relative, skipped)
        if text is None:
            continue
        if total + len(text) > PACKAGE_BYTES_CAP and not dist.held_out:
            skipped["package_cap"] = skipped.get("package_cap", 0) + 1
            continue
        total += len(text)
        files.append(SourceFile(relative, text, dist.name, dist.version, dist.licence or ""))
    return files


def _deduplicate(files: list[SourceFile], banned: set[str], skipped: dict[str, int]) -> list[SourceFile]:
    seen = set(banned)
    kept = []
    for item in files:
        digest = hashlib.sha256(item.text.encode()).hexdigest()
        if digest in seen:
            skipped["duplicate"] = skipped.get("duplicate", 0) + 1
            continue
        seen.add(digest)
        kept.append(item)
    return kept


def corpus_fingerprint(files: Iterable[tuple[str, str, str]]) -> str:
    """A digest of (package, path, text) triples in training order; the training log records it."""
    digest = hashlib.sha256()
    for package, path, text in files:
        digest.update(f"{package}/{path}\0".encode() + hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()[:16]


def load_corpus(cache: Path) -> Corpus:
    """The whole v2 corpus from the stdlib and the packages installed in ``cache``."""
    skipped: dict[str, int] = {}
    stdlib_train, held_stdlib = load_stdlib()
    train: list[SourceFile] = list(stdlib_train)
    held_packages: list[SourceFile] = []
    for dist in distributions(cache):
        if dist.licence is None:
            skipped["unclear_licence_files"] = skipped.get("unclear_licence_files", 0) + len(dist.files)
            continue
        (held_packages if dist.held_out else train).extend(load_package(cache, dist, skipped))
    held_packages = _deduplicate(held_packages, set(), skipped)
    banned = {hashlib.sha256(f.text.encode()).hexdigest() for f in held_packages + held_stdlib}
    return Corpus(_deduplicate(train, banned, skipped), held_stdlib, held_packages, skipped)
