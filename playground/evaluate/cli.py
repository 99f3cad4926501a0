"""``python -m playground.evaluate humaneval``: check a deployment against its model card.

    python -m playground.evaluate humaneval                         # nano-starcoder, greedy, all 164
    python -m playground.evaluate humaneval --model starcoder --dtype bfloat16
    python -m playground.evaluate humaneval --backend tgi --endpoint http://tgi:80 --model starcoder \\
        --samples 20 --temperature 0.2 --workers 16 --json starcoder.json

The model flags are the app's own (``python app.py --help``), parsed by the
app's parser, so ``--model``, ``--backend``, ``--dtype`` and the rest mean
the same here. Errors become an exit message here and nowhere else.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from playground.errors import PlaygroundError
from playground.evaluate.problems import load_problems
from playground.evaluate.report import summary
from playground.evaluate.results import EvaluationResult, save_run, write_json
from playground.evaluate.runner import EvaluationConfig, evaluate
from playground.evaluate.sandbox import Sandbox, SandboxLimits
from playground.evaluate.service_adapter import app_parser, open_service, settings_from_flags

BENCHMARKS = ("humaneval",)
PROG = "python -m playground.evaluate humaneval"


def _add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("--limit", type=int, help="run only the first K problems (a quick check, not the card's)")
    group.add_argument("--samples", type=int, default=1, help="completions per problem (default 1; 20 for pass@10)")
    group.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); 0.2 with --samples 20")
    group.add_argument("--workers", type=int, default=2, help="concurrent generations and test programs (default 2)")
    group.add_argument("--max-new-tokens", type=int, default=512, help="tokens per completion (default 512)")
    group.add_argument("--seed", type=int, default=0, help="base seed for sampled completions (default 0)")
    group.add_argument("--timeout", type=float, default=10.0, help="seconds per test program (default 10)")
    group.add_argument("--problems", type=Path, help="a HumanEval-format JSONL file (.gz or plain) instead")
    group.add_argument("--json", type=Path, dest="json_out", help="also write the full result to this file")
    group.add_argument("--no-save", action="store_true", help="do not keep the run in <data-dir>/evaluations")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, add_help=False, allow_abbrev=False)
    _add_evaluation_flags(parser)
    return parser


def _help_parser() -> argparse.ArgumentParser:
    """The evaluation flags plus every app flag: for --help, and to reject typos before a model loads."""
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[app_parser()], conflict_handler="resolve", allow_abbrev=False,
        description="Run HumanEval through the playground's serving path and compare pass@1 with the model "
                    "card. Model flags are the app's own (they also read PLAYGROUND_* variables).",
    )
    _add_evaluation_flags(parser)
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """``kill`` cleans up like Ctrl-C: programs killed, temp dirs removed."""
    raise KeyboardInterrupt


def run(argv: Sequence[str]) -> EvaluationResult:
    """Parse, evaluate, report. Raises PlaygroundError or KeyboardInterrupt."""
    _help_parser().parse_args(argv)  # --help, and unknown or malformed flags, before anything loads
    args, app_flags = _own_parser().parse_known_args(argv)
    settings = settings_from_flags(app_flags, os.environ)
    every = load_problems(args.problems)
    problems = every[: args.limit] if args.limit is not None else every
    config = EvaluationConfig(samples=args.samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                              seed=args.seed, workers=args.workers, progress=not args.no_progress)
    config.check()
    sandbox = Sandbox(SandboxLimits(timeout_s=args.timeout))
    print(f"sandbox: {sandbox.probe().describe()}", file=sys.stderr)
    print(f"loading {settings.model} ({settings.backend}) ...", file=sys.stderr)
    generator = open_service(settings)
    try:
        result = evaluate(problems, generator, config, deployment=generator.deployment(), sandbox=sandbox,
                          dataset=str(args.problems) if args.problems else "HumanEval",
                          complete_set=len(problems) == len(every))
    except BaseException:
        generator.stop_all()
        raise
    finally:
        generator.close()
    print(summary(result))
    if args.json_out:
        print(f"wrote {write_json(result, args.json_out)}")
    if not args.no_save:
        print(f"saved {save_run(result, settings.data_dir / 'evaluations')}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        if argv and argv[0] in ("-h", "--help"):
            _help_parser().print_help()
            return 0
        print(f"usage: {PROG} [options]; the benchmark is one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(argv[1:])
    except PlaygroundError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: every test program was killed and its files removed", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
