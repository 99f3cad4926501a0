"""The Space front matter and the Dockerfile, checked against the repo and run as the container would.

Docker itself is not needed: the Dockerfile's entrypoint and health check run here as plain
processes with the image's environment, so every CI run exercises the image's start steps.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx

from support.servers import free_port
from tests.conftest import REPO


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical, pending = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def instruction(name: str) -> str:
    found = [arguments for kind, arguments in dockerfile_instructions() if kind == name]
    assert len(found) == 1, f"expected one {name}"
    return found[0]


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip()] = version.split()[0]
    return pins


def test_space_front_matter_matches_requirements():
    front = (REPO / "README.md").read_text().split("---")[1]
    assert re.search(r"^sdk: gradio$", front, re.M)
    assert re.search(rf"^sdk_version: {re.escape(requirement_pins()['gradio'])}$", front, re.M)
    assert re.search(r'^python_version: "3.11"$', front, re.M)
    assert re.search(r"^app_file: app.py$", front, re.M)
    # StarCoder in bf16 is ~32 GB of weights: the suggested hardware must hold it with room for the cache.
    assert re.search(r"^suggested_hardware: (a100-large|h100)$", front, re.M)
    assert "- bigcode/starcoder" in front


def test_dockerfile_matches_the_repo_and_the_readme():
    readme = (REPO / "README.md").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN useradd .*--uid 1000 user", dockerfile, re.M) and "USER user" in dockerfile
    assert instruction("EXPOSE") == "7860" and image_env()["PLAYGROUND_PORT"] == "7860"
    # The install step is the README's, on the same requirements files.
    assert "pip install -r requirements.txt && python app.py" in readme
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "pip install --no-cache-dir -r requirements-gpu.txt" in dockerfile
    assert json.loads(instruction("ENTRYPOINT")) == ["python3", "app.py"]
    assert json.loads(instruction("VOLUME")) == [image_env()["HF_HOME"], image_env()["PLAYGROUND_DATA_DIR"]]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ">=3.11"
    # The README's docker commands: CPU and CUDA builds, one GPU, several with --device-map, behind TGI.
    commands = re.findall(r"^docker (?:build|run)(?:.*\\\n)*.*$", readme, re.M)
    ours = [command for command in commands if "text-generation-inference" not in command]
    assert all("starcoder-playground" in command for command in ours), ours
    assert any("VARIANT=cuda" in command for command in ours)
    assert any("--gpus '\"device=0\"'" in command for command in ours)
    assert any("--gpus all" in command and "--device-map auto" in command for command in ours)
    assert any("--backend tgi --endpoint http://tgi:80" in command for command in ours)


def test_the_image_start_and_health_check_commands_serve_the_app(tmp_path):
    """ENTRYPOINT under the image's ENV, then the HEALTHCHECK command, then `docker stop` (SIGTERM)."""
    port = free_port()
    env = {**os.environ, **image_env()}
    # The image's PATH puts its venv first; here the test's venv plays that part.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env.update(PLAYGROUND_PORT=str(port), PLAYGROUND_DATA_DIR=str(tmp_path / "data"),
               HF_HOME=str(tmp_path / "hf-cache"), HF_HUB_OFFLINE="1")
    health = instruction("HEALTHCHECK")
    health_command = json.loads(health[health.index("CMD") + 3:].strip())
    app = subprocess.Popen(json.loads(instruction("ENTRYPOINT")), cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(health_command, env=env, capture_output=True, check=False).returncode != 0:
            assert app.poll() is None, app.stdout.read()
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.5)
        reply = httpx.post(f"http://127.0.0.1:{port}/api/generate", timeout=60,
                           json={"mode": "complete", "prompt": "def add(a, b):", "params": {"max_new_tokens": 8}})
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] > 0
        share = httpx.post(f"http://127.0.0.1:{port}/api/shares", json={"generation_id": reply.json()["id"]})
        assert share.status_code == 201
        app.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it.
        assert app.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert "Shut down cleanly" in app.stdout.read()
    # Closed cleanly: the WAL was checkpointed into the database file, which holds the share.
    database = tmp_path / "data" / "playground.db"
    wal = database.with_name("playground.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        assert connection.execute("select count(*) from shares").fetchone()[0] == 1
