"""The result of one evaluation run, its JSON form, and the folder of saved runs.

The JSON is the contract with the app's future "Evaluate" view and with
anyone comparing deployments: ``to_dict`` writes it, ``from_dict`` reads it
back exactly. Saved runs are one file each, named so that a plain listing
sorts them by time: ``<UTC timestamp>-<model>.json``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playground.evaluate.card import CardScore
from playground.evaluate.errors import RunFileError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class ProblemResult:
    task_id: str
    passed: int  # how many of the samples passed
    samples: int
    completions: list[str] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)  # one per sample; None where it passed

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "passed": self.passed, "samples": self.samples,
                "completions": self.completions, "errors": self.errors}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemResult:
        return cls(str(data["task_id"]), int(data["passed"]), int(data["samples"]),
                   list(data.get("completions", [])), list(data.get("errors", [])))


@dataclass
class EvaluationResult:
    model: str
    backend: str
    dtype: str | None
    quantization: str | None
    revision: str | None
    dataset: str  # "HumanEval" or the --problems file
    complete_set: bool  # False when --limit cut the set short: a subset is not the card's measurement
    samples: int
    temperature: float
    pass_at: dict[int, float]  # k -> pass@k
    card: CardScore | None
    per_problem: list[ProblemResult]
    timings: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)  # max_new_tokens, stop, seed, sandbox limits
    sandbox: str = ""  # what the sandbox guaranteed, in words
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def problems(self) -> int:
        return len(self.per_problem)

    @property
    def pass_at_1(self) -> float:
        return self.pass_at[1]

    @property
    def delta(self) -> float | None:
        """This run's pass@1 minus the card's; None without a card figure."""
        return None if self.card is None else self.pass_at_1 - self.card.pass_at_1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT_VERSION, "created_at": self.created_at,
            "model": self.model, "backend": self.backend, "dtype": self.dtype,
            "quantization": self.quantization, "revision": self.revision,
            "dataset": self.dataset, "complete_set": self.complete_set,
            "problems": self.problems, "samples": self.samples, "temperature": self.temperature,
        }
        data.update({f"pass@{k}": value for k, value in sorted(self.pass_at.items())})
        data["card"] = None if self.card is None else {
            "pass@1": self.card.pass_at_1, "source": self.card.source, "approximate": self.card.approximate,
            "model": self.card.model, "hub_id": self.card.hub_id,
        }
        data["delta"] = self.delta
        data.update(settings=self.settings, sandbox=self.sandbox, timings=self.timings,
                    per_problem=[problem.to_dict() for problem in self.per_problem])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        card = data.get("card")
        pass_at = {int(key.removeprefix("pass@")): float(value) for key, value in data.items()
                   if key.startswith("pass@")}
        return cls(
            model=data["model"], backend=data["backend"], dtype=data.get("dtype"),
            quantization=data.get("quantization"), revision=data.get("revision"),
            dataset=data.get("dataset", "HumanEval"), complete_set=bool(data.get("complete_set", True)),
            samples=int(data["samples"]), temperature=float(data["temperature"]), pass_at=pass_at,
            card=None if card is None else CardScore(card["model"], card["hub_id"], float(card["pass@1"]),
                                                     card["source"], bool(card.get("approximate", False))),
            per_problem=[ProblemResult.from_dict(item) for item in data["per_problem"]],
            timings={key: float(value) for key, value in data.get("timings", {}).items()},
            settings=dict(data.get("settings", {})), sandbox=data.get("sandbox", ""),
            created_at=data.get("created_at", ""),
        )


def write_json(result: EvaluationResult, path: Path) -> Path:
    """Write atomically: a reader (the app's view) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    # ASCII with escapes: a completion may hold a lone surrogate, which has no UTF-8 form but a JSON one.
    partial.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=True) + "\n", encoding="ascii")
    os.replace(partial, path)
    return path


def save_run(result: EvaluationResult, directory: Path) -> Path:
    """Keep the run in ``directory`` (e.g. ``<data_dir>/evaluations``) for later comparison."""
    stamp = datetime.fromisoformat(result.created_at).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", result.model.strip("/")).strip("._") or "model"
    path = directory / f"{stamp}-{slug[-80:]}.json"
    suffix = 2
    while path.exists():  # two runs in one second
        path = directory / f"{stamp}-{slug[-80:]}-{suffix}.json"
        suffix += 1
    return write_json(result, path)


def load_run(path: Path) -> EvaluationResult:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EvaluationResult.from_dict(data)
    except OSError as exc:
        raise RunFileError(f"Cannot read the evaluation run {path}: {exc.strerror}. List runs to find it.") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunFileError(
            f"{path} is not an evaluation run written by this version ({exc!r}). Re-run the evaluation."
        ) from None


@dataclass(frozen=True)
class RunEntry:
    """One line of the runs list: enough to show a table without loading every completion twice."""

    path: Path
    created_at: str
    model: str
    backend: str
    dataset: str
    problems: int
    samples: int
    pass_at_1: float
    card_pass_at_1: float | None


def list_runs(directory: Path) -> list[RunEntry]:
    """Saved runs, newest first; files that cannot be read are skipped with a warning in the log."""
    if not directory.is_dir():
        return []
    entries = []
    for path in directory.glob("*.json"):
        try:
            run = load_run(path)
        except RunFileError as exc:
            log.warning("Skipping %s: %s", path, exc.message)
            continue
        entries.append(RunEntry(path, run.created_at, run.model, run.backend, run.dataset, run.problems,
                                run.samples, run.pass_at_1, None if run.card is None else run.card.pass_at_1))
    return sorted(entries, key=_age, reverse=True)


def _age(entry: RunEntry) -> tuple[str, int, int]:
    """The recorded time; within one second, when the file was written, then save_run's -2, -3 suffix."""
    suffix = re.search(r"-(\d+)\.json$", entry.path.name)
    return entry.created_at, entry.path.stat().st_mtime_ns, int(suffix.group(1)) if suffix else 1
