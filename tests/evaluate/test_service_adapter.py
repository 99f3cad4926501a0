"""The adapter over the app's service, on the fake backend: what reaches the model, and Ctrl-C of the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.backends.fake import FakeBackend
from playground.errors import GenerationFailedError
from playground.evaluate.runner import STOP_SEQUENCES
from playground.evaluate.service_adapter import ServiceGenerator, open_service, settings_from_flags
from tests.evaluate.conftest import RESTORE_CTRL_C, kill_sandbox_processes, sandbox_processes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceGenerator]:
    generator = open_service(settings_from_flags(["--backend", "fake", "--data-dir", str(tmp_path)], {}))
    yield generator
    generator.close()


def _backend(generator: ServiceGenerator) -> FakeBackend:
    backend = generator.playground.slot(None).backend
    assert isinstance(backend, FakeBackend)
    return backend


def test_the_prompt_reaches_the_model_unchanged_with_the_papers_sampling(service: ServiceGenerator) -> None:
    backend = _backend(service)
    backend.outputs = ["    return 1\n\ndef unrelated():\n    pass\n"]
    prompt = 'def f():\n    """Return one."""\n'
    text = service(prompt, stop=list(STOP_SEQUENCES), temperature=0.2, seed=11, max_new_tokens=64)
    assert text == "    return 1\n"  # the service cut the stop sequence, as it does for users
    request = backend.requests[-1]
    assert request.prompt.render() == prompt
    params = request.params
    assert (params.temperature, params.top_p, params.top_k, params.repetition_penalty, params.seed) == (
        0.2, 0.95, 0, 1.0, 11)
    assert set(STOP_SEQUENCES) <= set(params.stop) and params.max_new_tokens <= 64


def test_the_deployment_is_described_from_the_backend(service: ServiceGenerator) -> None:
    deployment = service.deployment()
    assert (deployment.model, deployment.backend, deployment.quantization) == ("nano-starcoder", "fake", "none")


def test_a_generation_that_errors_stops_the_evaluation(service: ServiceGenerator) -> None:
    backend = _backend(service)
    backend.outputs, backend.fail_after = ["    return 1 " * 10], 2
    with pytest.raises(GenerationFailedError, match="failed while generating"):
        service("def f():\n", stop=[], temperature=0.0, seed=None, max_new_tokens=32)


def test_ctrl_c_of_the_cli_leaves_no_processes_and_no_temp_dirs(tmp_path: Path) -> None:
    problems = tmp_path / "slow.jsonl"
    slow_test = "def check(candidate):\n    import time\n    time.sleep(60)\n"
    problems.write_text("".join(json.dumps({"task_id": f"S/{i}", "prompt": f"def f{i}():\n", "test": slow_test,
                                            "entry_point": f"f{i}"}) + "\n" for i in range(6)))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    as_main = "import runpy; runpy.run_module('playground.evaluate', run_name='__main__', alter_sys=True)"
    command = [sys.executable, "-c", RESTORE_CTRL_C + as_main, "humaneval", "--backend", "fake", "--problems",
               str(problems), "--data-dir", str(tmp_path / "data"), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(temp.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(temp.iterdir())) == 2, "the test programs never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        if proc.returncode != 130:
            kill_sandbox_processes()
    assert proc.returncode == 130 and "interrupted" in stderr
    assert list(temp.iterdir()) == [] and sandbox_processes() == []
    assert not (tmp_path / "data" / "evaluations").exists()  # an interrupted run is not saved
