"""The nano-starcoder corpus: the Python standard library of the running interpreter.

Every machine that can run the playground has this code, so anyone can rebuild
the model. Files are split into train and held-out sets by a hash of their
relative path, so the split does not depend on file-system order.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Test suites are large, repetitive and full of deliberately odd code; vendored
# third-party packages are not the standard library.
_EXCLUDED_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
HELD_OUT_PERCENT = 4


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the stdlib root, e.g. "json/decoder.py"
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def is_held_out(relative_path: str) -> bool:
    digest = hashlib.sha256(relative_path.encode()).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def load_stdlib(root: Path | None = None) -> tuple[list[SourceFile], list[SourceFile]]:
    """Return (train, held_out) source files, sorted by path."""
    root = root or stdlib_root()
    train: list[SourceFile] = []
    held_out: list[SourceFile] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
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
