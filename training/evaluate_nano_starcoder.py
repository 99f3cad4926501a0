"""Evaluate nano-starcoder on held-out standard-library files it never trained on.

    python -m training.evaluate_nano_starcoder --model models/nano-starcoder

Reports, as JSON (the model card quotes it):
- left-to-right loss: mean next-token cross-entropy over held-out windows;
- FIM loss: cross-entropy of the middle (and the closing end-of-text) in PSM samples;
- FIM gain: for single held-out lines, log p(line | prefix, suffix) under the FIM
  prompt minus log p(line | prefix) left to right, in nats per line, and the
  share of lines where the suffix helped;
- single-line exact match: greedy infilling of a masked line, compared with the
  original line (trailing whitespace ignored).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.corpus import load_stdlib

PREFIX_TOKENS = 200  # context budget around a masked line, inside the 512 trained positions
SUFFIX_TOKENS = 150
MAX_LINE_TOKENS = 48


@dataclass(frozen=True)
class LineCase:
    prefix: str
    line: str  # includes its newline
    suffix: str


def pick_lines(files, count: int, rng: random.Random) -> list[LineCase]:
    """Non-trivial single lines (4+ non-space chars, not a comment) from held-out files."""
    candidates = []
    for source in files:
        lines = source.text.splitlines(keepends=True)
        offset = 0
        for index, line in enumerate(lines):
            stripped = line.strip()
            if index > 2 and len(stripped) >= 4 and not stripped.startswith("#") and line.endswith("\n"):
                candidates.append((source.text, offset, offset + len(line)))
            offset += len(line)
    rng.shuffle(candidates)
    return [LineCase(text[:start], text[start:end], text[end:]) for text, start, end in candidates[:count]]


class Scorer:
    def __init__(self, folder: Path):
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        vocab = self.tok.get_vocab()
        self.eot, self.pre, self.mid, self.suf = (vocab[t] for t in ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>"))
        self.context = self.model.config.n_positions

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    @torch.inference_mode()
    def target_logprob(self, context: list[int], target: list[int]) -> float:
        ids = torch.tensor([context + target])
        logits = self.model(ids).logits[0, len(context) - 1 : -1]
        return float(F.log_softmax(logits, -1).gather(1, torch.tensor(target)[:, None]).sum())

    def line_ids(self, case: LineCase) -> tuple[list[int], list[int], list[int]]:
        prefix = self.encode(case.prefix)[-PREFIX_TOKENS:]
        suffix = self.encode(case.suffix)[:SUFFIX_TOKENS]
        return prefix, self.encode(case.line)[:MAX_LINE_TOKENS], suffix

    def fim_context(self, prefix: list[int], suffix: list[int]) -> list[int]:
        return [self.pre, *prefix, self.suf, *suffix, self.mid]

    @torch.inference_mode()
    def infill(self, prefix: list[int], suffix: list[int]) -> str:
        ids = torch.tensor([self.fim_context(prefix, suffix)])
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_LINE_TOKENS,
                                  do_sample=False, eos_token_id=self.eot, pad_token_id=self.eot)
        return self.tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    @torch.inference_mode()
    def window_loss(self, ids: list[int], loss_from: int = 1) -> tuple[float, int]:
        tensor = torch.tensor([ids])
        logits = self.model(tensor).logits[0, loss_from - 1 : -1]
        targets = tensor[0, loss_from:]
        return float(F.cross_entropy(logits, targets, reduction="sum")), len(targets)


def evaluate(folder: Path, lines: int, windows: int, seed: int) -> dict:
    _, held_out = load_stdlib()
    scorer = Scorer(folder)
    rng = random.Random(seed)
    cases = pick_lines(held_out, lines, rng)

    gains, matches = [], 0
    for case in cases:
        prefix, line, suffix = scorer.line_ids(case)
        fim = scorer.target_logprob(scorer.fim_context(prefix, suffix), line)
        left_to_right = scorer.target_logprob(prefix or [scorer.eot], line)
        gains.append(fim - left_to_right)
        guess = scorer.infill(prefix, suffix)
        matches += guess.split("\n")[0].rstrip() == case.line.rstrip()

    l2r_sum = l2r_n = fim_sum = fim_n = 0.0
    texts = [f.text for f in held_out]
    for _ in range(windows):
        ids = scorer.encode(rng.choice(texts))
        if len(ids) < 64:
            continue
        start = rng.randrange(0, max(1, len(ids) - scorer.context))
        window = ids[start : start + scorer.context]
        loss, count = scorer.window_loss(window)
        l2r_sum, l2r_n = l2r_sum + loss, l2r_n + count
        # PSM sample over a shorter window, scoring the middle and the closing end-of-text.
        piece = window[: scorer.context - 8]
        a, b = sorted(rng.sample(range(1, len(piece)), 2))
        context = scorer.fim_context(piece[:a], piece[b:])
        loss, count = scorer.window_loss(context + piece[a:b] + [scorer.eot], loss_from=len(context))
        fim_sum, fim_n = fim_sum + loss, fim_n + count

    gains_sorted = sorted(gains)
    return {
        "held_out_files": len(held_out),
        "lines_scored": len(cases),
        "left_to_right_loss": round(l2r_sum / l2r_n, 4),
        "fim_middle_loss": round(fim_sum / fim_n, 4),
        "fim_gain_nats_per_line_mean": round(sum(gains) / len(gains), 3),
        "fim_gain_nats_per_line_median": round(gains_sorted[len(gains) // 2], 3),
        "fim_wins_share": round(sum(g > 0 for g in gains) / len(gains), 3),
        "single_line_exact_match": round(matches / len(cases), 3),
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/nano-starcoder"))
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    result = evaluate(args.model, args.lines, args.windows, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
