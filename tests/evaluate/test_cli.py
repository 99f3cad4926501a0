"""``python -m playground.evaluate``: flags, errors at the edge, and one real run on nano-starcoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.evaluate.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_evaluation_flags_and_the_apps_model_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["humaneval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--limit", "--samples", "--temperature", "--workers", "--json", "--problems", "--timeout",
                 "--max-new-tokens", "--model", "--backend", "--endpoint", "--dtype", "--device-map", "--quantize"):
        assert flag in text, flag


def test_an_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mbpp"]) == 2
    assert "humaneval" in capsys.readouterr().err


def test_bad_app_flags_fail_before_anything_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["humaneval", "--backend", "tgi"]) == 2
    assert "--backend tgi needs --endpoint" in capsys.readouterr().err


def test_a_bad_problems_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    assert main(["humaneval", "--problems", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "lacks prompt, test, entry_point" in capsys.readouterr().err


def test_a_real_run_on_nano_starcoder(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "playground.evaluate", "humaneval", "--limit", "3", "--data-dir", str(tmp_path),
         "--json", str(out), "--no-progress", "--max-new-tokens", "128"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no published HumanEval figure for nano-starcoder" in proc.stdout
    data = json.loads(out.read_text())
    assert (data["model"], data["backend"], data["problems"], data["complete_set"]) == ("nano-starcoder", "local", 3,
                                                                                         False)
    assert data["dtype"] == "float32" and data["card"] is None
    assert [p["task_id"] for p in data["per_problem"]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    saved = list((tmp_path / "evaluations").glob("*-nano-starcoder.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["pass@1"] == data["pass@1"]
