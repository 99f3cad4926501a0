"""The loop rule (``playground/prompting/loops.py``): what it costs a stream, and how often real code trips it.

1. Cost: the stream stage's cutter fed a module of the standard library token by token (as nano-starcoder
   tokenizes it), with and without loops, best of three rounds each, interleaved: microseconds a token.
2. Real code: the first 8,000 characters of Python modules, the standard library's top level and every
   40th module of this environment's site-packages (tests left out), scanned whole. A "loop" here is
   code the rule would have stopped had a model written it.

    python bench/bench_loops.py [--module argparse] [--json loops.json]
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import sys
import sysconfig
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoTokenizer  # noqa: E402

from playground.params import GenerationParams  # noqa: E402
from playground.prompting.loops import Loops  # noqa: E402
from playground.stream import StopCutter  # noqa: E402


def cost(pieces: list[str], rounds: int = 3) -> dict[str, float]:
    """Microseconds a token through the cutter, loops off and on, the best of interleaved rounds."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, on in (("cutter alone", False), ("cutter with loops", True)):
            cutter = StopCutter.of(GenerationParams(stop_loops=on))
            start = time.perf_counter()
            for piece in pieces:
                cutter.feed(piece)
            cutter.flush()
            each = (time.perf_counter() - start) / len(pieces) * 1e6
            best[name] = min(best.get(name, each), each)
    return best


def modules() -> list[Path]:
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:150]
    site = sorted(Path(p) for p in glob.glob(sysconfig.get_paths()["purelib"] + "/**/*.py", recursive=True)
                  if "/test" not in p)[::40]
    return stdlib + site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="argparse", help="the standard-library module streamed for the cost")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models" / "nano-starcoder")
    source = Path(importlib.import_module(args.module).__file__ or "").read_text()[:12000]
    pieces = [tokenizer.decode([i]) for i in tokenizer(source)["input_ids"]]
    timing = cost(pieces)
    print(f"{len(pieces)} tokens of {args.module}.py ({len(source) / len(pieces):.1f} characters a token): "
          + ", ".join(f"{name} {us:.1f} us a token" for name, us in timing.items()))
    paths = modules()
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")[:8000]
        loop = Loops().find(text)
        if loop is not None and loop.final:
            found.append({"module": str(path), "loop_ends": text[max(0, loop.at - 60) : loop.at]})
    print(f"real code: {len(found)} of {len(paths)} modules hold a loop in their first 8,000 characters")
    for hit in found:
        print(f"  {hit['module']}: ...{hit['loop_ends']!r}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "loops", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                         "tokens": len(pieces), "us_per_token": timing, "modules": len(paths),
                                         "loops": found}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
