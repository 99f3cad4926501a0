"""Evaluation benchmark: grading speed of the sandbox, and nano-starcoder's real HumanEval score.

1. Grades HumanEval's 164 canonical solutions through the runner and the
   sandbox (a fake deployment answers each prompt with its reference body).
   Target: pass@1 exactly 1.000 in under 60 s on 2 cores.
2. With ``--nano``: runs the shipped nano-starcoder on all 164 problems,
   greedy, through the app's serving path (``service_adapter``), exactly as
   ``python -m playground.evaluate humaneval`` does. No prompt tuning.

    .venv/bin/python bench/bench_evaluate.py [--workers 2] [--nano] [--json evaluate.json]

The remote-engine concurrency target (16 requests against the TGI stand-in)
is not measured here: the stand-in is being moved by the concurrent refactor.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nano", action="store_true", help="also run nano-starcoder on all 164 problems")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"canonical": canonical(args.workers)}
    if args.nano:
        figures["nano_starcoder"] = nano(args.workers)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if figures["canonical"]["pass@1"] == 1.0 and figures["canonical"]["seconds"] < CANONICAL_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
