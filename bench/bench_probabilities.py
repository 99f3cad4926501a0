"""What token probabilities and candidates cost, on the shipped nano-starcoder, in one run.

1. logprobs = 5 against logprobs = 0: the same greedy continuation of the same prompt through the
   service (``Playground.start`` → ``Run.pieces``, what the REST stream consumes, so the per-delta
   token lists are included), interleaved round by round, the order swapped every round.
   tokens/s = usage.completion_tokens ÷ wall time; both runs must make the same number of tokens.
   Target: with ÷ without ≥ 0.95.
2. n = 4 (and 8) against n = 1: wall time of one fill-free completion with sampling (temperature
   0.8, top_p 0.95, the same seed per round) and the same max_new_tokens, interleaved. Several
   candidates are one batched ``generate``, which runs until its longest candidate ends, so every run
   here is made to write exactly max_new_tokens (min_new_tokens) for a like-for-like ratio.
   Target: n = 4 ≤ 1.6 × n = 1; n = 8 is reported. Beside it, the floor: plain ``model.generate`` with
   ``num_return_sequences`` = 1, 4, 8 (no streamer, no logits processor of ours), same settings, so the
   share of the ratio that is the batched model's own arithmetic is visible. ``top_k=0`` is passed
   because ``generate`` otherwise adds its default top-k of 50 before top-p, which the app's default
   (top-k off) does not, and which makes top-p's sort cheaper (most scores are already -inf).

    .venv/bin/python bench/bench_probabilities.py [--tokens 200] [--rounds 7] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
os.chdir(ROOT)  # the registry's nano-starcoder source is relative to the repo
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
logging.disable(logging.WARNING)

import torch  # noqa: E402

from playground.backends.local import LocalBackend  # noqa: E402
from playground.backends.local_steps import Forbid  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.loading import load_model  # noqa: E402
from playground.prompt import Prompt  # noqa: E402
from playground.registry import load_registry  # noqa: E402
from playground.service import Playground  # noqa: E402
from playground.slots import ModelSlot  # noqa: E402
from playground.tech_assistant import load_tech_assistant  # noqa: E402

PROMPT = "import os\nimport sys\n\n\ndef main():\n"


class FixedLength(LocalBackend):
    """The local backend made to write exactly max_new_tokens, so that runs compare like for like: its end
    tokens are out of sampling (as generate's min_new_tokens does) and end nothing."""

    def __init__(self, loaded: Any) -> None:
        super().__init__(loaded)
        forbidden = set(self._forbid.token_ids if self._forbid else ()) | set(self.eos_ids)
        self._forbid, self.eos_ids = Forbid(sorted(forbidden)), []


def timed(playground: Playground, params: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    run = playground.start("complete", None, {"prompt": PROMPT}, params)
    for _ in run.pieces():
        pass
    elapsed = time.perf_counter() - started
    assert run.record is not None and run.record.error is None
    return elapsed, run.record.usage.completion_tokens


def logprobs_rounds(playground: Playground, tokens: int, rounds: int) -> dict[str, Any]:
    speeds: dict[str, list[float]] = {"without": [], "with": []}
    counts: set[int] = set()
    base = {"temperature": 0, "max_new_tokens": tokens, "repetition_penalty": 1.0, "stop_loops": False}
    for index in range(rounds):
        order = ("without", "with") if index % 2 == 0 else ("with", "without")
        for name in order:
            seconds, made = timed(playground, {**base, "logprobs": 5 if name == "with" else 0})
            speeds[name].append(made / seconds)
            counts.add(made)
    ratio = statistics.median(speeds["with"]) / statistics.median(speeds["without"])
    return {"tokens_per_s": {k: round(statistics.median(v), 1) for k, v in speeds.items()},
            "token_counts": sorted(counts), "ratio": round(ratio, 3), "target": 0.95, "met": ratio >= 0.95}


def raw_generate(backend: LocalBackend, tokens: int, n: int, seed: int) -> float:
    """Plain generate, timed on a fresh thread as the backend runs it (torch's thread pool is per thread)."""
    ids = torch.tensor([backend.encode(Prompt.of(PROMPT))])
    took: list[float] = []

    def run() -> None:
        torch.manual_seed(seed)
        started = time.perf_counter()
        with torch.inference_mode():
            backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                   min_new_tokens=tokens, do_sample=True, temperature=0.8, top_p=0.95,
                                   top_k=0, num_return_sequences=n, pad_token_id=backend.tokenizer.eos_token_id)
        took.append(time.perf_counter() - started)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return took[0]


def candidates_rounds(playground: Playground, backend: LocalBackend, tokens: int, rounds: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {f"{path}{n}": [] for path in ("app", "raw") for n in (1, 4, 8)}
    for index in range(rounds):
        order = [1, 4, 8] if index % 2 == 0 else [8, 4, 1]
        for n in order:
            params = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": tokens, "seed": 100 + index, "n": n,
                      "repetition_penalty": 1.0, "stop_loops": False}  # generate's knobs, no more
            walls[f"app{n}"].append(timed(playground, params)[0])
            walls[f"raw{n}"].append(raw_generate(backend, tokens, n, 100 + index))
    medians = {name: statistics.median(v) for name, v in walls.items()}

    def ratio(path: str, n: int) -> float:
        return round(medians[f"{path}{n}"] / medians[f"{path}1"], 3)

    return {"wall_s": {name: round(v, 3) for name, v in medians.items()},
            "ratio_n4": ratio("app", 4), "ratio_n8": ratio("app", 8),
            "raw_generate_ratio_n4": ratio("raw", 4), "raw_generate_ratio_n8": ratio("raw", 8),
            "target_n4": 1.6, "met": ratio("app", 4) <= 1.6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    spec = load_registry()["nano-starcoder"]
    backend = FixedLength(load_model("nano-starcoder", load_registry(), settings))
    playground = Playground(settings, {spec.id: ModelSlot(spec, backend)}, load_tech_assistant())
    timed(playground, {"temperature": 0, "max_new_tokens": 16})  # warm-up
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads",
        "tokens": args.tokens, "rounds": args.rounds,
        "logprobs5_vs_0": logprobs_rounds(playground, args.tokens, args.rounds),
        "candidates_vs_1": candidates_rounds(playground, backend, args.tokens, args.rounds),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
