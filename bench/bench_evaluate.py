"""Evaluation benchmark: grading speed of the sandbox, and nano-starcoder's real HumanEval score.

1. Grades HumanEval's 164 canonical solutions through the runner and the
   sandbox (a fake deployment answers each prompt with its reference body).
   Target: pass@1 exactly 1.000 in under 60 s on 2 cores.
2. With ``--nano``: runs the shipped nano-starcoder on all 164 problems,
   greedy, through the app's serving path (``service_adapter``), exactly as
   ``python -m playground.evaluate humaneval`` does. No prompt tuning.

3. With ``--remote``: all 164 problems through a TGI stand-in (in its own
   process) that streams every request at a fixed rate, with 16 workers and
   the app's remote concurrency at 16. The engine is the bottleneck when the
   run takes about as long as the engine alone needs: the same 164 requests
   sent straight to the stand-in, 16 at a time, with huggingface_hub's
   InferenceClient and no grading. The ratio of the two is printed.

    .venv/bin/python bench/bench_evaluate.py [--workers 2] [--nano] [--remote] [--json evaluate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from playground.evaluate import Deployment, EvaluationConfig, Sandbox, evaluate, load_problems  # noqa: E402
from playground.evaluate.report import summary  # noqa: E402

CANONICAL_TARGET_S = 60.0


def canonical(workers: int) -> dict[str, Any]:
    problems = load_problems()
    answers = {p.prompt: p.canonical_solution for p in problems}

    def generate(prompt: str, *, stop: list[str], temperature: float, seed: int | None, max_new_tokens: int) -> str:
        return answers[prompt]

    sandbox = Sandbox()
    started = time.perf_counter()
    result = evaluate(problems, generate, EvaluationConfig(workers=workers, progress=False), sandbox=sandbox,
                      deployment=Deployment("canonical solutions", "fake"))
    seconds = time.perf_counter() - started
    failed = [p.task_id for p in result.per_problem if not p.passed]
    print(f"canonical: {len(problems)} problems, pass@1 {result.pass_at_1:.3f}, {seconds:.1f} s with {workers} "
          f"workers ({seconds / len(problems) * 1000:.0f} ms per problem); target 1.000 in < {CANONICAL_TARGET_S:g} s: "
          f"{'MET' if result.pass_at_1 == 1.0 and seconds < CANONICAL_TARGET_S else 'MISSED'}")
    if failed:
        print(f"  failed: {', '.join(failed)}")
    print(f"  sandbox: {result.sandbox}")
    return {"problems": len(problems), "pass@1": result.pass_at_1, "seconds": round(seconds, 2), "workers": workers,
            "sandbox": result.sandbox}


def nano(workers: int) -> dict[str, Any]:
    from playground.evaluate.service_adapter import open_service, settings_from_flags

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as data_dir:
        generator = open_service(settings_from_flags(["--data-dir", data_dir], {}))
        try:
            started = time.perf_counter()
            result = evaluate(load_problems(), generator, EvaluationConfig(workers=workers, progress=True),
                              deployment=generator.deployment())
            seconds = time.perf_counter() - started
        finally:
            generator.close()
    print(summary(result))
    refused = sum(1 for p in result.per_problem for e in p.errors if e and e.startswith("generation refused"))
    print(f"nano-starcoder: pass@1 {result.pass_at_1:.3f} on {result.problems} problems in {seconds:.0f} s "
          f"({refused} prompts did not fit its 512-token context)")
    return {"pass@1": result.pass_at_1, "solved": sum(1 for p in result.per_problem if p.passed),
            "problems": result.problems, "seconds": round(seconds, 1), "refused_prompts": refused,
            "timings": result.timings}


REMOTE_RATE = 10.0  # tokens per second per stream: StarCoder-15B-like per-request speed on a busy engine
REMOTE_TOKENS = 48  # tokens the stand-in sends for every request
REMOTE_WORKERS = 16


def remote() -> dict[str, Any]:
    import subprocess

    import httpx

    from playground.evaluate.service_adapter import open_service, settings_from_flags
    from support.servers import free_port

    port = free_port()
    engine = subprocess.Popen([sys.executable, "-m", "support.standins.tgi_standin", "--port", str(port),
                               "--rate", str(REMOTE_RATE)], cwd=Path(__file__).resolve().parents[1],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as data_dir:
            flags = ["--backend", "tgi", "--endpoint", url, "--model", "starcoder", "--data-dir", data_dir,
                     "--remote-concurrency", str(REMOTE_WORKERS), "--generate-per-minute", "0"]
            generator = open_service(settings_from_flags(flags, {}))
            try:
                problems = load_problems()
                started = time.perf_counter()
                result = evaluate(problems, generator, EvaluationConfig(workers=REMOTE_WORKERS, progress=False,
                                                                        max_new_tokens=REMOTE_TOKENS),
                                  deployment=generator.deployment())
                seconds = time.perf_counter() - started
            finally:
                generator.close()
        engine_alone = _engine_alone(url, [p.prompt for p in problems])
    finally:
        engine.terminate()
        engine.wait(timeout=20)
    print(f"remote: {len(problems)} problems, {REMOTE_WORKERS} at a time, {REMOTE_TOKENS} tokens at "
          f"{REMOTE_RATE:g} tok/s: {seconds:.1f} s; the engine alone needs {engine_alone:.1f} s; "
          f"ratio {seconds / engine_alone:.2f}")
    return {"seconds": round(seconds, 1), "engine_alone_s": round(engine_alone, 1),
            "ratio": round(seconds / engine_alone, 2), "timings": result.timings}


def _engine_alone(url: str, prompts: list[str]) -> float:
    """Seconds for the stand-in to answer the same requests with no app and no grading in the way."""
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import InferenceClient

    from playground.evaluate import STOP_SEQUENCES

    client = InferenceClient(base_url=url)

    def ask(prompt: str) -> str:
        return client.text_generation(prompt, max_new_tokens=REMOTE_TOKENS, stop=list(STOP_SEQUENCES)[:4])

    started = time.perf_counter()
    with ThreadPoolExecutor(REMOTE_WORKERS) as pool:
        list(pool.map(ask, prompts))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nano", action="store_true", help="also run nano-starcoder on all 164 problems")
    parser.add_argument("--remote", action="store_true", help="also time 16 workers against a TGI stand-in")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"canonical": canonical(args.workers)}
    if args.remote:
        figures["remote"] = remote()
    if args.nano:
        figures["nano_starcoder"] = nano(args.workers)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if figures["canonical"]["pass@1"] == 1.0 and figures["canonical"]["seconds"] < CANONICAL_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
