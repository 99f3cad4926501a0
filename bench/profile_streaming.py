"""Where the time per streamed token goes: py-spy samples of the app while it streams nano-starcoder.

Starts ``python app.py`` (``--engine process`` or ``inprocess``), then, for each path, streams the same
greedy completion again and again while ``py-spy record --gil --idle`` samples the web process (and,
with ``--subprocesses``, its engine process) at 250 Hz. ``--gil`` keeps only samples of the thread
that holds the interpreter lock, so the shares below say what the lock was busy with; ``--idle``
keeps waiting threads too, so the first figure says how often nobody held it.

Prints, per path and process, the share of GIL-holding samples by category (model, our stream and
service, web server, Gradio, idle) and the functions with the most samples of their own; writes the
folded stacks for a flame graph (``--out DIR``).

    .venv/bin/python bench/profile_streaming.py [--engine process] [--seconds 15] [--tokens 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from support.servers import free_port, wait_healthy  # noqa: E402

# First match wins, read from the innermost frame outwards.
CATEGORIES = (
    ("model (torch, generate)", ("torch", "transformers/", "generate")),
    ("stream, service, engine pipe", ("playground/",)),
    ("Gradio (queue, events, diffs)", ("gradio/", "gradio_client/")),
    ("web server (uvicorn, starlette, asyncio)", ("uvicorn", "starlette", "asyncio", "anyio", "h11", "fastapi")),
)
PROMPT = "import os\nimport sys\n\n\ndef main():\n"


def start_app(engine: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PLAYGROUND_LOG_LEVEL": "WARNING",
           "PLAYGROUND_DATA_DIR": tempfile.mkdtemp(prefix="profile-data-"), "PLAYGROUND_ATTRIBUTION": "off"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--engine", engine], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", 180, proc)
    except RuntimeError as exc:
        proc.kill()
        raise RuntimeError(f"{exc}; see {log}") from None
    return proc


def rest_load(url: str, tokens: int, stop: threading.Event) -> None:
    body = {"mode": "complete", "prompt": PROMPT, "stream": True,
            "params": {"max_new_tokens": tokens, "temperature": 0, "repetition_penalty": 1.0, "stop_loops": False}}
    while not stop.is_set():
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=120) as response:
            for _ in response.iter_lines():
                pass


def gradio_load(url: str, tokens: int, stop: threading.Event) -> None:
    from gradio_client import Client

    client = Client(url + "/", verbose=False)
    while not stop.is_set():
        client.predict(PROMPT, "nano-starcoder", tokens, 0, 0.9, 0, 1.0, "", "1", False, 1, True, False,
                       api_name="/complete")
    client.close()


def profile(pid: int, seconds: int, out: Path, load: threading.Thread, stop: threading.Event) -> Path:
    load.start()
    time.sleep(2)  # past the first request's warm-up
    subprocess.run(["py-spy", "record", "--pid", str(pid), "--gil", "--idle", "--subprocesses", "--rate", "250",
                    "--duration", str(seconds), "--format", "raw", "--output", str(out), "--nonblocking"],
                   check=True, capture_output=True)
    stop.set()
    load.join(timeout=130)
    return out


def summarise(folded: Path) -> None:
    by_process: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # With --subprocesses each stack starts with its process chain: the app, then (for the
        # engine) the spawned child.
        process = "engine" if any(f.startswith("process ") and "spawn_main" in f for f in frames[:3]) else "web"
        n = int(count)
        by_process[process][_category(frames)] += n
        leaves[process][frames[-1][:110]] += n
    for process, counts in by_process.items():
        total = sum(counts.values())
        print(f"  {process} process: {total} samples")
        for name, n in counts.most_common():
            print(f"    {100 * n / total:5.1f} %  {name}")
        print("    most samples of their own:")
        for leaf, n in leaves[process].most_common(8):
            print(f"      {100 * n / total:5.1f} %  {leaf}")


def _category(frames: list[str]) -> str:
    if all("(idle)" in f or "wait" in f or "select" in f or "poll" in f for f in frames[-2:]):
        return "idle (nobody holds the lock)"
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("process", "inprocess"), default="process")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="profile-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    app = start_app(args.engine, port, args.out / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        for name, load in (("rest", rest_load), ("gradio", gradio_load)):
            stop = threading.Event()
            thread = threading.Thread(target=load, args=(url, args.tokens, stop), daemon=True)
            folded = profile(app.pid, args.seconds, args.out / f"{name}-{args.engine}.folded", thread, stop)
            print(f"{name} path, --engine {args.engine} ({folded}):")
            summarise(folded)
    finally:
        app.terminate()
        app.wait(30)


if __name__ == "__main__":
    main()
