"""Reading build inputs: folders of source files, and JSONL or Parquet dumps of documents.

Each input yields ``Document`` objects; anything unusable is counted in
``skipped`` under a reason instead of stopping the build, because real corpora
always hold some binary, oversized or broken files.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.attribution._errors import IndexBuildError
from playground.attribution._types import BuildOptions, ColumnNames, Document

PYARROW_PIN = "pyarrow==26.0.1"
_VCS_DIRS = {".git", ".hg", ".svn"}  # history and objects, not source files
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

Advance = Callable[[int], None]  # told how many input bytes were consumed, for the progress bar


@dataclass(frozen=True)
class Input:
    """One thing to read: a source file under ``root``, or a whole dump."""

    kind: str  # "file", "jsonl" or "parquet"
    path: Path
    root: Path
    size: int


def plan_inputs(paths: Sequence[Path], options: BuildOptions, skipped: Counter[str]) -> list[Input]:
    """Expand folders into their files (sorted, so builds are reproducible) and check each path exists."""
    planned: list[Input] = []
    for path in paths:
        if path.is_dir():
            planned.extend(_walk(path, options.max_file_bytes, skipped))
        elif path.is_file():
            kind = "parquet" if path.name.endswith(".parquet") else "jsonl" if path.name.endswith(_JSONL_SUFFIXES) \
                else "file"
            planned.append(Input(kind, path, path.parent, path.stat().st_size))
        else:
            raise IndexBuildError(f"The build input {path} does not exist; pass folders, files or JSONL/Parquet dumps.")
    return planned


def _walk(root: Path, max_bytes: int, skipped: Counter[str]) -> Iterator[Input]:
    # Symlinked folders are followed once each: the set of visited (device, inode)
    # pairs stops loops such as a link to a parent folder.
    seen: set[tuple[int, int]] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                skipped["symlink_loop"] += 1
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            skipped["unreadable"] += 1
            continue
        subfolders: list[Path] = []
        for entry in entries:
            try:
                if entry.is_dir():
                    if entry.name not in _VCS_DIRS:
                        subfolders.append(Path(entry.path))
                    continue
                size = entry.stat().st_size
            except OSError:
                skipped["unreadable"] += 1  # a broken link, or one that loops on itself
                continue
            if size > max_bytes:
                skipped["too_large"] += 1
            else:
                yield Input("file", Path(entry.path), root, size)
        pending.extend(reversed(subfolders))  # depth-first, in name order


def read_inputs(inputs: Sequence[Input], options: BuildOptions, skipped: Counter[str],
                advance: Advance) -> Iterator[Document]:
    for item in inputs:
        if item.kind == "file":
            document = _read_file(item, options, skipped)
            advance(item.size)
            if document is not None:
                yield document
        else:
            rows = _jsonl_rows(item, advance) if item.kind == "jsonl" else _parquet_rows(item, options, advance)
            yield from _dump_documents(item, rows, options, skipped)


def _read_file(item: Input, options: BuildOptions, skipped: Counter[str]) -> Document | None:
    try:
        data = item.path.read_bytes()
    except OSError:
        skipped["unreadable"] += 1
        return None
    if len(data) > options.max_file_bytes:
        skipped["too_large"] += 1
        return None
    if b"\0" in data:
        skipped["binary"] += 1
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        skipped["not_utf8"] += 1
        return None
    return Document(item.path.relative_to(item.root).as_posix(), text, options.repo, options.license)


def _jsonl_rows(item: Input, advance: Advance) -> Iterator[Mapping[str, Any] | None]:
    opener = gzip.open if item.path.name.endswith(".gz") else open
    compressed = item.path.name.endswith(".gz")
    with opener(item.path, "rb") as stream:
        for line in stream:
            if not compressed:
                advance(len(line))
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            yield row if isinstance(row, dict) else None
    if compressed:
        advance(item.size)


def _parquet_rows(item: Input, options: BuildOptions, advance: Advance) -> Iterator[Mapping[str, Any] | None]:
    try:
        parquet: Any = importlib.import_module("pyarrow.parquet")  # optional, and heavy: imported only here
    except ImportError:
        raise IndexBuildError(
            f"Reading the Parquet dump {item.path} needs pyarrow; install it with `pip install {PYARROW_PIN}` "
            "or convert the dump to JSONL.") from None
    dump = parquet.ParquetFile(item.path)
    present = set(dump.schema_arrow.names)
    wanted = [name for names in _fields(options.columns) for name in names if name in present]
    total_rows = max(1, dump.metadata.num_rows)
    for batch in dump.iter_batches(batch_size=256, columns=wanted or None):
        yield from batch.to_pylist()
        advance(item.size * batch.num_rows // total_rows)


def _fields(columns: ColumnNames) -> tuple[tuple[str, ...], ...]:
    return columns.content, columns.path, columns.repo, columns.license


def _dump_documents(item: Input, rows: Iterator[Mapping[str, Any] | None], options: BuildOptions,
                    skipped: Counter[str]) -> Iterator[Document]:
    yielded = unusable = 0
    for number, row in enumerate(rows, start=1):
        if row is None:
            skipped["bad_row"] += 1
            unusable += 1
            continue
        content = _first(row, options.columns.content)
        if not isinstance(content, str):
            skipped["no_content"] += 1
            unusable += 1
            continue
        if "\0" in content:
            skipped["binary"] += 1
            continue
        if len(content) > options.max_file_bytes or len(content.encode("utf-8", "surrogatepass")) > \
                options.max_file_bytes:
            skipped["too_large"] += 1
            continue
        path = _text_field(_first(row, options.columns.path)) or f"{item.path.name}:{number}"
        repo = _text_field(_first(row, options.columns.repo)) or options.repo
        license_ = _text_field(_first(row, options.columns.license)) or options.license
        yielded += 1
        yield Document(path, content, repo, license_)
    if yielded == 0 and unusable > 0:
        names = ", ".join(options.columns.content)
        raise IndexBuildError(
            f"No row of {item.path} has text content in a column named {names}; name the content column with "
            "--jsonl-columns content=NAME (and path=, repo=, license= for the others).")


def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def _text_field(value: Any) -> str:
    # The Stack keeps licences as a list of SPDX ids; a plain string is used as it is.
    if isinstance(value, list | tuple):
        return ", ".join(str(part) for part in value)
    return "" if value is None else str(value)
