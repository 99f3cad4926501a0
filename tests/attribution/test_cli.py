"""The CLI end to end, in subprocesses as a user runs it: build, check a file and stdin, and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import STDLIB, fenced, lines

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "playground.attribution", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60, check=False)


def test_build_then_check_a_file_and_stdin(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.sqlite"
    built = _run("build", str(out), str(corpus_dir), "--name", "stdlib", "--repo", "python/cpython",
                 "--license", "PSF-2.0")
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("indexed 7 documents") and str(out) in built.stdout
    assert built.stderr == ""  # no progress bar when stderr is not a terminal
    planted = lines((STDLIB / "textwrap.py").read_text(encoding="utf-8"), 40, 60)
    (tmp_path / "generated.py").write_text(fenced(planted), encoding="utf-8")
    checked = _run("check", str(out), str(tmp_path / "generated.py"))
    assert checked.returncode == 0, checked.stderr
    assert "1 match(es)" in checked.stdout and "textwrap.py lines 40-60 [python/cpython, PSF-2.0]" in checked.stdout
    as_json = _run("check", str(out), "-", "--json", stdin=fenced(planted))
    report = json.loads(as_json.stdout)
    assert [m["source"]["start_line"] for m in report["matches"]] == [40]
    nothing = _run("check", str(out), "-", stdin="print('hello')\n")
    assert (nothing.returncode, nothing.stdout.splitlines()[0][:10]) == (0, "0 match(es")


def test_errors_are_one_sentence_with_status_1(tmp_path: Path) -> None:
    missing = _run("check", str(tmp_path / "missing.sqlite"), "-", stdin="x")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: The attribution index") and missing.stderr.count("\n") == 1
    no_input = _run("build", str(tmp_path / "out.sqlite"), str(tmp_path / "nowhere"))
    assert no_input.returncode == 1 and "Traceback" not in no_input.stderr and "does not exist" in no_input.stderr
    unreadable = _run("check", str(tmp_path / "missing.sqlite"), str(tmp_path / "nofile.py"))
    assert unreadable.returncode == 1 and unreadable.stderr.startswith("error: Cannot read")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert _run("build", str(tmp_path / "out.sqlite")).returncode == 2  # no PATH
    bad_columns = _run("build", str(tmp_path / "out.sqlite"), str(tmp_path), "--jsonl-columns", "body")
    assert bad_columns.returncode == 2 and "FIELD=COLUMN" in bad_columns.stderr
