"""The CPU benchmarks whose figures the README quotes, run on a few tokens so that they cannot rot.

bench_probabilities.py once failed for weeks unnoticed (it read the record's usage as a dict); these
runs check that each script still goes through every path it times and measures what it says: every
path writes exactly the tokens asked for, and each figure the README quotes is in the report. In the
slow tier: each loads the model in a process of its own (the streaming bench starts the app too).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_probabilities_bench_compares_runs_of_exactly_the_asked_length(tmp_path):
    out = tmp_path / "probabilities.json"
    run("bench_probabilities.py", "--tokens", "12", "--rounds", "1", "--json", str(out), cwd=tmp_path)
    report = json.loads(out.read_text())
    assert report["logprobs5_vs_0"]["token_counts"] == [12]  # with and without, every run wrote all 12
    walls = report["candidates_vs_1"]["wall_s"]
    assert set(walls) == {"app1", "app4", "app8", "raw1", "raw4", "raw8"} and all(v > 0 for v in walls.values())


def test_the_decode_options_bench_times_the_engines_loop_beside_generate(tmp_path):
    done = run("bench_decode_options.py", "--tokens", "12", "--rounds", "1", "--no-compile", cwd=tmp_path)
    speeds = dict(re.findall(r"^(.+?)\s+median\s+([\d.]+) tok/s", done.stdout, re.MULTILINE))
    assert {"plain generate (dynamic cache)", "static cache", "forward pass alone, greedy loop",
            "the engine's decode loop"} <= {name.strip() for name in speeds}
    assert all(float(v) > 0 for v in speeds.values()) and "torch operators" in done.stdout


def test_the_streaming_bench_times_every_path_on_the_same_tokens(tmp_path):
    out = tmp_path / "streaming.json"
    run("bench_streaming.py", "--tokens", "12", "--rounds", "1", "--json", str(out), cwd=tmp_path)
    report = json.loads(out.read_text())
    paths = ("snippet", "threaded", "backend", "rest", "gradio", "gradio-queue")
    assert set(report["runs"]) == set(paths)
    assert {timed["tokens"] for path in paths for timed in report["runs"][path]} == {12}
    assert all(report["paired_median"][path] > 0 for path in paths)
    assert report["ttft_ms"]["gradio_queue"] > 0 and report["ttft_ms"]["rest_overhead"] is not None
