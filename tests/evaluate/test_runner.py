"""The runner with fake deployments: exact scores, hostile completions, failures and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from playground.errors import BackendUnavailableError, PromptTooLongError
from playground.evaluate import Deployment, EvaluationConfig, EvaluationError, Problem, Sandbox, evaluate, load_problems
from playground.evaluate.results import load_run, save_run
from playground.evaluate.runner import STOP_SEQUENCES, seed_for, truncate
from tests.evaluate.conftest import RESTORE_CTRL_C, answering, kill_sandbox_processes, sandbox_processes

REPO = Path(__file__).resolve().parents[2]
QUIET = EvaluationConfig(workers=2, progress=False)


def test_canonical_solutions_score_exactly_one(sandbox: Sandbox) -> None:
    problems = load_problems(limit=40)  # all 164 run in bench/bench_evaluate.py
    result = evaluate(problems, answering({p.prompt: p.canonical_solution for p in problems}), QUIET,
                      sandbox=sandbox, deployment=Deployment("starcoder", "fake"))
    assert result.pass_at == {1: 1.0}
    assert all(p.errors == [None] for p in result.per_problem)


def test_half_wrong_scores_exactly_one_half(sandbox: Sandbox) -> None:
    problems = load_problems(limit=10)
    wrong = "    raise RuntimeError('wrong on purpose')\n"
    answers = {p.prompt: p.canonical_solution if i % 2 == 0 else wrong for i, p in enumerate(problems)}
    result = evaluate(problems, answering(answers), QUIET, sandbox=sandbox)
    assert result.pass_at_1 == 0.5
    assert [p.passed for p in result.per_problem] == [1, 0] * 5
    assert result.per_problem[1].errors == ["RuntimeError: wrong on purpose"]


def test_a_completion_with_a_lone_surrogate_fails_its_problem_not_the_run(sandbox: Sandbox, tmp_path: Path) -> None:
    """The red team's input: '\\ud800' in a completion. It has no UTF-8 form, so it cannot run; the rest of
    the evaluation does, and the saved run reads back with the completion exactly as the model gave it."""
    problems = load_problems(limit=2)
    bad = "    return '\ud800'\n"
    answers = {problems[0].prompt: bad, problems[1].prompt: problems[1].canonical_solution}
    result = evaluate(problems, answering(answers), QUIET, sandbox=sandbox)
    assert [p.passed for p in result.per_problem] == [0, 1]
    assert "lone surrogate" in (result.per_problem[0].errors[0] or "")
    saved = load_run(save_run(result, tmp_path))
    assert saved.per_problem[0].completions == [bad]


def test_completions_are_cut_at_the_stop_sequences() -> None:
    assert STOP_SEQUENCES == ("\ndef", "\nclass", "\nif", "\nprint", "\n#")
    assert truncate("    return 1\n\ndef other():\n    pass", STOP_SEQUENCES) == "    return 1\n"
    assert truncate("    return 1\nif __name__ == '__main__':", STOP_SEQUENCES) == "    return 1"
    assert truncate("    return 1", STOP_SEQUENCES) == "    return 1"


def test_the_generator_gets_the_bare_prompt_stops_and_a_seed_per_sample(sandbox: Sandbox) -> None:
    problem = Problem("T/0", "def f():\n", "def check(c):\n    assert c() == 1\n", "f")
    calls: list[tuple[str, list[str], float, int | None, int]] = []

    def generate(prompt: str, *, stop: list[str], temperature: float, seed: int | None, max_new_tokens: int) -> str:
        calls.append((prompt, stop, temperature, seed, max_new_tokens))
        return "    return 1\n" if seed == seed_for(7, 0, 0) else "    return 2\n"

    config = EvaluationConfig(samples=3, temperature=0.2, seed=7, max_new_tokens=64, progress=False)
    result = evaluate([problem], generate, config, sandbox=sandbox)
    assert sorted(c[3] or 0 for c in calls) == sorted(seed_for(7, 0, s) for s in range(3))
    assert all(c[0] == "def f():\n" and c[1] == list(STOP_SEQUENCES) and c[4] == 64 for c in calls)
    assert result.per_problem[0].passed == 1 and result.pass_at_1 == pytest.approx(1 / 3)


def test_hostile_completions_fail_and_the_honest_one_still_passes(sandbox: Sandbox, outside_dir: Path,
                                                                  full_tier: bool) -> None:
    hostile = {
        "loop": "    while True:\n        pass\n",
        "memory": "    junk = []\n    while True:\n        junk.append(bytearray(2**24))\n",
        "outside": f"    import shutil\n    shutil.rmtree({str(outside_dir)!r})\n    return 1\n",
    }
    if full_tier:  # the basic tier can neither cap forks (as root) nor stop deletions
        hostile["forks"] = "    import os\n    while True:\n        try:\n            os.fork()\n" \
                           "        except OSError:\n            pass\n"
        hostile["home"] = "    import os, shutil\n    shutil.rmtree(os.path.expanduser('~'))\n    return 1\n"
    problems = [Problem(f"T/{name}", f"def {name}():\n", "def check(c):\n    assert c() == 1\n", name)
                for name in ["honest", *hostile]]
    answers = {"def honest():\n": "    return 1\n", **{f"def {k}():\n": v for k, v in hostile.items()}}
    result = evaluate(problems, answering(answers), QUIET, sandbox=sandbox)
    assert [p.passed for p in result.per_problem] == [1] + [0] * len(hostile)
    assert result.pass_at_1 == pytest.approx(1 / len(problems))
    assert (outside_dir / "sentinel").read_text() == "still here"
    assert sandbox_processes() == []


def test_a_refused_prompt_fails_its_problem_only(sandbox: Sandbox) -> None:
    problems = [Problem("T/0", "def f():\n", "def check(c):\n    assert c() == 1\n", "f"),
                Problem("T/1", "def g():\n", "def check(c):\n    assert c() == 1\n", "g")]

    def generate(prompt: str, **_: object) -> str:
        if prompt.startswith("def g"):
            raise PromptTooLongError("The prompt is 600 tokens, but only 384 fit.")
        return "    return 1\n"

    result = evaluate(problems, generate, QUIET, sandbox=sandbox)
    assert [p.passed for p in result.per_problem] == [1, 0]
    assert result.per_problem[1].errors[0] == "generation refused: The prompt is 600 tokens, but only 384 fit."


def test_a_failing_deployment_stops_the_run_with_its_message(sandbox: Sandbox) -> None:
    def generate(prompt: str, **_: object) -> str:
        raise BackendUnavailableError("The engine at http://tgi:80 is not answering. Start it and retry.")

    with pytest.raises(BackendUnavailableError, match="not answering"):
        evaluate(load_problems(limit=5), generate, QUIET, sandbox=sandbox)
    assert sandbox_processes() == []


def test_bad_settings_are_refused_before_anything_runs() -> None:
    with pytest.raises(EvaluationError, match="--temperature 0.2"):
        EvaluationConfig(samples=20, temperature=0.0).check()
    with pytest.raises(EvaluationError, match="at least 1"):
        EvaluationConfig(workers=0).check()


CTRL_C_SCRIPT = RESTORE_CTRL_C + textwrap.dedent("""
    import faulthandler, signal, sys
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for stacks if Ctrl-C hangs
    from playground.evaluate import EvaluationConfig, Problem, evaluate
    problems = [Problem(f"T/{i}", f"def f{i}():\\n", "def check(c):\\n    c()\\n", f"f{i}") for i in range(8)]
    def generate(prompt, **_):
        return "    import time\\n    time.sleep(60)\\n"
    print("started", flush=True)
    try:
        evaluate(problems, generate, EvaluationConfig(workers=3, progress=False))
    except KeyboardInterrupt:
        sys.exit(130)
""")


def test_ctrl_c_leaves_no_processes_and_no_temp_dirs(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(list(temp.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until three programs are running
        assert len(list(temp.iterdir())) == 3 and sandbox_processes()
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=20) == 130
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # where it hangs, for the failure message
            time.sleep(1)
            proc.kill()
            raise AssertionError("Ctrl-C did not end the run in 20 s; its threads:\n" + proc.communicate()[1]) from None
    finally:
        proc.kill()
        if proc.returncode != 130:
            kill_sandbox_processes()
    assert list(temp.iterdir()) == []
    assert sandbox_processes() == []
