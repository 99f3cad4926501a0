"""Evaluate nano-starcoder on held-out code it never trained on.

    python -m training.evaluate_nano_starcoder --model models/nano-starcoder            # held-out packages
    python -m training.evaluate_nano_starcoder --model models/nano-starcoder --split stdlib
    python -m training.evaluate_nano_starcoder --model models/nano-starcoder --split unseen

``--split packages`` (the default) scores the whole packages that the package
list marks ``held-out`` (never in training nor in the tokenizer); ``--split
stdlib`` scores the standard-library files held out by path hash, as v1 did;
``--split unseen`` scores packages that no corpus list names at all
(``training/unseen-packages.txt``, installed the same way into their own cache).
Reports, as JSON (the model card quotes it):

- left-to-right loss: next-token cross-entropy over the same character chunks
  for every model, in nats per token and nats per character (tokenizers differ
  between versions, so only the per-character figure compares two of them);
- FIM loss: cross-entropy of the middle (and the closing end-of-text) in PSM samples;
- FIM gain: for single held-out lines, log p(line | prefix, suffix) under the FIM
  prompt minus log p(line | prefix) left to right, in nats per line, and the
  share of lines where the suffix helped; in both orders, PSM (what the app
  sends to StarCoder) and SPM (suffix first, so the middle follows its prefix);
- single-line exact match: greedy infilling of a masked line, compared with the
  original line (trailing whitespace ignored);
- middles that end: the share of those greedy middles that close with
  end-of-text within 48 tokens, as the app needs them to, and the share that
  close with nothing but whitespace before it (an empty fill); the share that close
  after writing something when, as in the playground's engine, end-of-text cannot
  come before the first visible character (``no_empty_fill``); and, given the true
  line, the probability of end-of-text right after it (whether the model knows
  where a correct middle meets its suffix, apart from whether it writes one);
- context honesty: mean loss at positions 0-127, 32-127 and 384-511 of full
  512-token windows of held-out code; late must not be worse than early (even
  without the first 32 positions, which see almost no context), or a longer
  prompt makes the model worse. Early and late are different code, so the
  late tokens are also scored a second time with only the 128 tokens they
  span as their prompt: the same code after a 384-token longer prompt must
  not be worse, on average and in most windows. Windows that start in their
  file's first 128 tokens (a licence or imports early, code late) are counted,
  and the bands are also given without them;
- end-of-text in the window's last positions: on those same windows of running
  code, the most probability put on end-of-text at any of the last 16
  positions, and how many windows put more than half there.

Lines are drawn uniformly from all candidate lines, so a very long file weighs
in proportion. Where one file gives more than a quarter of them (in the stdlib
split, ``pydoc_data/topics.py``: generated help text in string literals), the
suffix-first figures are also reported without that file's lines.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from playground.backends.local_steps import NotEmpty, blank_tokens
from training.corpus import SourceFile, load_corpus, load_package, load_stdlib

PREFIX_TOKENS = 200  # context budget around a masked line, inside the 512 trained positions
SUFFIX_TOKENS = 150
MAX_LINE_TOKENS = 48
CHUNK_CHARS = 1_000  # left-to-right chunks: short enough to fit 512 tokens under any of our tokenizers
EARLY, SETTLED, LATE = (0, 128), (32, 128), (384, 512)  # context-honesty position bands
LAST_POSITIONS = 16  # the end of the window, where v5 expected end-of-text in running code
NEARBY_CHARS = 2_000  # text on each side of a hole that decides how it tokenizes
UNSEEN_LIST = Path(__file__).with_name("unseen-packages.txt")
DOMINANT_SHARE = 0.25  # a file giving more of the lines than this is also left out once


@dataclass(frozen=True)
class LineCase:
    """A masked line, cut so that each side of the hole ends where the tokenizer splits anyway.

    The hole is the newline before the line plus the line's own text, ``"\\n    return x"``; the
    prefix ends on the previous line's last character and the suffix starts with the line's newline.
    Cut after the newline instead, the line would start with a bare indentation token that running
    text never has (``"\\n   "`` is one token there): left to right that costs the baseline ~4 nats
    on the first token, which once showed up as FIM "gain" although the suffix had not helped.
    Cut this way, both modes score the same tokens, the ones the text itself has.
    """

    prefix: str
    line: str  # "\n" + the line, without its own newline
    suffix: str
    path: str  # the file it came from


def pick_lines(files: list[SourceFile], count: int, rng: random.Random) -> list[LineCase]:
    """Non-trivial single lines (4+ non-space chars, not a comment) from held-out files."""
    candidates = []
    for source in files:
        lines = source.text.splitlines(keepends=True)
        offset = 0
        for index, line in enumerate(lines):
            stripped = line.strip()
            if index > 2 and len(stripped) >= 4 and not stripped.startswith("#") and line.endswith("\n"):
                candidates.append((source, offset - 1, offset + len(line) - 1))
            offset += len(line)
    rng.shuffle(candidates)
    return [LineCase(f.text[:start], f.text[start:end], f.text[end:], f.path) for f, start, end in candidates[:count]]


def pick_chunks(files: list[SourceFile], count: int, rng: random.Random) -> list[str]:
    """Character chunks of held-out files, chosen without any tokenizer so every model scores the same text."""
    texts = [f.text for f in files if len(f.text) >= CHUNK_CHARS // 2]
    chunks = []
    for _ in range(count):
        text = rng.choice(texts)
        start = rng.randrange(0, max(1, len(text) - CHUNK_CHARS))
        chunks.append(text[start : start + CHUNK_CHARS])
    return chunks


class Scorer:
    def __init__(self, folder: Path):
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        vocab = self.tok.get_vocab()
        self.eot, self.pre, self.mid, self.suf = (vocab[t] for t in ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>"))
        self.context = self.model.config.n_positions
        self.blank = blank_tokens(self.tok)

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    @torch.inference_mode()
    def target_logprob(self, context: list[int], target: list[int]) -> tuple[float, float, float]:
        """log p(target | context); the same as the playground samples a fill under ``no_empty_fill``
        (end-of-text taken out, and the rest renormalized, until the target has a visible character);
        and p(end-of-text) right after the target."""
        ids = torch.tensor([context + target])
        logprobs = F.log_softmax(self.model(ids).logits[0, len(context) - 1 :], -1)
        plain = float(logprobs[:-1].gather(1, torch.tensor(target)[:, None]).sum())
        visible = [i for i, token in enumerate(target) if not self.blank[token]]
        unwritten = logprobs[: visible[0] + 1 if visible else len(target), self.eot]
        under_rule = plain - float(torch.log1p(-unwritten.exp()).sum())
        return plain, under_rule, float(logprobs[-1, self.eot].exp())

    def line_ids(self, case: LineCase) -> tuple[list[int], list[int], list[int]]:
        prefix = self.encode(case.prefix)[-PREFIX_TOKENS:]
        suffix = self.encode(case.suffix)[:SUFFIX_TOKENS]
        return prefix, self.encode(case.line)[:MAX_LINE_TOKENS], suffix

    def fim_context(self, prefix: list[int], suffix: list[int], order: str = "psm") -> list[int]:
        if order == "spm":
            return [self.pre, self.suf, *suffix, self.mid, *prefix]
        return [self.pre, *prefix, self.suf, *suffix, self.mid]

    @torch.inference_mode()
    def infill(self, prefix: list[int], suffix: list[int], order: str, not_empty: bool = False) -> tuple[str, bool]:
        """The greedy middle, and whether the model closed it with end-of-text itself; ``not_empty``: with
        the playground engine's rule that end-of-text cannot come before the first visible character."""
        ids = torch.tensor([self.fim_context(prefix, suffix, order)])
        rule = LogitsProcessorList([NotEmpty([self.eot], self.blank, ids.shape[1])] if not_empty else [])
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_LINE_TOKENS,
                                  do_sample=False, eos_token_id=self.eot, pad_token_id=self.eot,
                                  logits_processor=rule)
        new = out[0, ids.shape[1]:]
        return self.tok.decode(new, skip_special_tokens=True), bool((new == self.eot).any())

    @torch.inference_mode()
    def window(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each token's loss (from the second on), and p(end-of-text) after every position."""
        tensor = torch.tensor([ids])
        logits = self.model(tensor).logits[0]
        losses = F.cross_entropy(logits[:-1], tensor[0, 1:], reduction="none")
        return losses, F.softmax(logits, -1)[:, self.eot]

    @torch.inference_mode()
    def token_losses(self, ids: list[int], loss_from: int = 1) -> torch.Tensor:
        """Cross-entropy of each token from ``loss_from`` on, given everything before it."""
        tensor = torch.tensor([ids])
        logits = self.model(tensor).logits[0, loss_from - 1 : -1]
        return F.cross_entropy(logits, tensor[0, loss_from:], reduction="none")


def fim_lines(scorer: Scorer, cases: list[LineCase], pieces: list[tuple], order: str) -> dict:
    gains, gains_by_rule, matches, ended, empty, ended_by_rule, end_after_line = [], [], 0, 0, 0, 0, 0.0
    for case, (prefix, line, suffix) in zip(cases, pieces, strict=True):
        fim, fim_by_rule, p_end = scorer.target_logprob(scorer.fim_context(prefix, suffix, order), line)
        left_to_right, _, _ = scorer.target_logprob(prefix or [scorer.eot], line)
        end_after_line += p_end
        gains.append(fim - left_to_right)
        gains_by_rule.append(fim_by_rule - left_to_right)
        guess, closed = scorer.infill(prefix, suffix, order)
        ended += closed
        if closed and not guess.strip():  # ended at once, or after whitespace only: nothing filled
            empty += 1
            # Greedy paths differ only where end-of-text was chosen before anything visible, so only
            # an empty middle needs running again under the playground's rule.
            closed = scorer.infill(prefix, suffix, order, not_empty=True)[1]
        ended_by_rule += closed
        # The guess must start the line (its newline) and then write it; what follows is not judged.
        matches += guess.startswith("\n") and guess[1:].split("\n")[0].rstrip() == case.line[1:].rstrip()
    ordered = sorted(gains)
    return {
        "fim_gain_nats_per_line_mean": round(sum(gains) / len(gains), 3),
        "fim_gain_nats_per_line_median": round(ordered[len(gains) // 2], 3),
        "fim_wins_share": round(sum(g > 0 for g in gains) / len(gains), 3),
        "fim_gain_worst_decile_mean": round(sum(ordered[: len(gains) // 10]) / max(1, len(gains) // 10), 3),
        # The fill as the playground's engine samples it: a middle cannot end before it writes something.
        "fim_wins_share_under_the_no_empty_fill_rule": round(sum(g > 0 for g in gains_by_rule) / len(gains), 3),
        "fim_gain_nats_per_line_mean_under_the_no_empty_fill_rule": round(sum(gains_by_rule) / len(gains), 3),
        "single_line_exact_match": round(matches / len(cases), 3),
        "single_line_exact_matches": matches,
        "middles_ending_by_themselves": round(ended / len(cases), 3),
        "middles_ending_empty": round(empty / len(cases), 3),
        "middles_ending_under_the_no_empty_fill_rule": round(ended_by_rule / len(cases), 3),
        "end_of_text_after_true_line_mean_probability": round(end_after_line / len(cases), 3),
    }


def without_dominant_file(scorer: Scorer, cases: list[LineCase], pieces: list[tuple]) -> dict:
    """Suffix-first figures without the lines of a file that gives more than DOMINANT_SHARE of them."""
    path, count = Counter(case.path for case in cases).most_common(1)[0]
    if count <= DOMINANT_SHARE * len(cases):
        return {}
    kept = [(case, piece) for case, piece in zip(cases, pieces, strict=True) if case.path != path]
    figures = fim_lines(scorer, [case for case, _ in kept], [piece for _, piece in kept], "spm")
    return {"dominant_file": {"path": path, "lines": count},
            "fim_spm_without_dominant_file": {"lines_scored": len(kept)} | figures}


def natural_cuts(scorer: Scorer, cases: list[LineCase]) -> float:
    """Share of cases whose three pieces, tokenized apart, give the tokens of the whole text."""
    def around(c: LineCase) -> tuple[str, str, str]:  # the split at the hole depends on nearby text only
        return c.prefix[-NEARBY_CHARS:], c.line, c.suffix[:NEARBY_CHARS]

    natural = sum(scorer.encode(p) + scorer.encode(m) + scorer.encode(s) == scorer.encode(p + m + s)
                  for p, m, s in map(around, cases))
    return round(natural / len(cases), 3)


def chunk_losses(scorer: Scorer, chunks: list[str], rng: random.Random) -> dict:
    """Left-to-right loss per token and per character, and the FIM middle loss, on the same chunks."""
    nats = tokens = chars = fim_nats = fim_tokens = 0.0
    for chunk in chunks:
        ids = scorer.encode(chunk)[: scorer.context]
        # Characters actually covered, in case a chunk ran past the context.
        chars += len(scorer.tok.decode(ids)) - 1  # the first token is not predicted
        losses = scorer.token_losses(ids)
        nats, tokens = nats + float(losses.sum()), tokens + len(losses)
        # PSM sample, scoring the middle and the closing end-of-text.
        piece = ids[: scorer.context - 8]
        a, b = sorted(rng.sample(range(1, len(piece)), 2))
        context = scorer.fim_context(piece[:a], piece[b:])
        losses = scorer.token_losses(context + piece[a:b] + [scorer.eot], loss_from=len(context))
        fim_nats, fim_tokens = fim_nats + float(losses.sum()), fim_tokens + len(losses)
    return {
        "left_to_right_loss": round(nats / tokens, 4),
        "left_to_right_nats_per_char": round(nats / chars, 4),
        "chars_per_token": round(chars / tokens, 3),
        "fim_middle_loss": round(fim_nats / fim_tokens, 4),
    }


def context_honesty(scorer: Scorer, files: list[SourceFile], windows: int, rng: random.Random) -> dict:
    """Loss by position band over full windows of held-out code (late positions see more context, so
    should not be worse), and the probability of end-of-text in the last positions of running code."""
    long_ids = [ids for ids in (scorer.encode(f.text) for f in files) if len(ids) >= scorer.context]
    rows = []
    for _ in range(windows):
        ids = rng.choice(long_ids)
        start = rng.randrange(0, len(ids) - scorer.context + 1)
        losses, p_eot = scorer.window(ids[start : start + scorer.context])
        # losses[i] is the loss of token i + 1, predicted from positions 0..i.
        row = {band: float(losses[max(0, band[0] - 1) : band[1] - 1].mean()) for band in (EARLY, SETTLED, LATE)}
        # The same late tokens again, as the first positions of a window of their own: only the prompt's
        # length differs, not the code, so this pair says whether more context helps.
        alone, _ = scorer.window(ids[start + LATE[0] : start + scorer.context])
        row |= {"after": float(losses[LATE[0] : scorer.context - 1].mean()), "alone": float(alone.mean()),
                "head": start < EARLY[1], "eot": float(p_eot[-LAST_POSITIONS:].max())}
        rows.append(row)

    def mean(key: object, subset: list[dict] = rows) -> float:
        return round(sum(row[key] for row in subset) / len(subset), 4)

    # A window that starts in its file's first positions has the file's head (licence, imports) early:
    # text unlike the code later in the window, so the band comparison is also given without them.
    inside = [row for row in rows if not row["head"]]
    early, settled, late = mean(EARLY), mean(SETTLED), mean(LATE)
    return {
        "context_windows": windows,
        "loss_positions_0_127": early,
        "loss_positions_32_127": settled,
        "loss_positions_384_511": late,
        "late_not_worse_than_early": late <= early and late <= settled,
        "windows_starting_in_their_files_first_128_tokens": windows - len(inside),
        "loss_positions_0_127_384_511_other_windows": [mean(EARLY, inside), mean(LATE, inside)] if inside else None,
        "late_tokens_loss_after_the_window": mean("after"),
        "late_tokens_loss_on_their_own": mean("alone"),
        "windows_where_the_longer_prompt_helps": sum(row["after"] < row["alone"] for row in rows),
        "end_of_text_last_16_positions_max_probability_mean": mean("eot"),
        "windows_expecting_end_of_text_in_last_16_positions": sum(row["eot"] > 0.5 for row in rows),
    }


def held_out_files(split: str, cache: Path | None) -> list[SourceFile]:
    if split == "stdlib":
        return load_stdlib()[1]
    from training.packages import distributions, fetch

    if split == "unseen":
        cache = fetch(cache, UNSEEN_LIST)
        skipped: dict[str, int] = {}
        return [f for dist in distributions(cache, UNSEEN_LIST) for f in load_package(cache, dist, skipped)]
    return load_corpus(cache or fetch()).held_out_packages


def evaluate(folder: Path, lines: int, windows: int, seed: int, split: str = "packages",
             cache: Path | None = None) -> dict:
    files = held_out_files(split, cache)
    scorer = Scorer(folder)
    rng = random.Random(seed)
    cases = pick_lines(files, lines, rng)
    chunks = pick_chunks(files, windows, rng)
    result: dict = {"split": split, "held_out_files": len(files),
                    "held_out_packages": sorted({f"{f.package} {f.version}" for f in files})
                    if split != "stdlib" else ["cpython (4% of files by path hash)"]}
    result |= chunk_losses(scorer, chunks, rng)
    result |= {"lines_scored": len(cases), "lines_cut_where_the_tokenizer_splits": natural_cuts(scorer, cases)}
    pieces = [scorer.line_ids(case) for case in cases]
    result |= {f"fim_{order}": fim_lines(scorer, cases, pieces, order) for order in ("psm", "spm")}
    result |= without_dominant_file(scorer, cases, pieces)
    result |= context_honesty(scorer, files, windows, rng)
    return result | {"seed": seed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/nano-starcoder"))
    parser.add_argument("--split", choices=("packages", "stdlib", "unseen"), default="packages")
    parser.add_argument("--cache", type=Path, help="where the corpus packages are installed (default: fetch)")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = evaluate(args.model, args.lines, args.windows, args.seed, args.split, args.cache)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
