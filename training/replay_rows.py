"""Replay the rows the trainer would see, and count where end-of-text, padding and middles fall.

    python -m training.replay_rows --rows 2000

It builds rows exactly as ``training.train_nano_starcoder`` does (same seed,
packer and FIM policy, the shipped tokenizer) without training, then reports
per position band: the share of positions that are not targets (padding, or a
unit's first token), how likely a target is end-of-text, and where FIM middles
close; also how many middles are cut before their end-of-text, and the share of
tokens inside FIM units. The v5 → v6 figures in the model card come from it.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from tokenizers import Tokenizer

from training.corpus import load_corpus
from training.fim import FimPolicy, SpecialIds
from training.packages import fetch
from training.packing import IGNORED, Reader, pack_row

BANDS = ((0, 128), (128, 256), (256, 384), (384, 496), (496, 512))


def band(position: int) -> str:
    low, high = next(b for b in BANDS if b[0] <= position < b[1])
    return f"{low}-{high - 1}"


def count_row(ids: list[int], labels: list[int], special: SpecialIds, totals: dict[str, Counter]) -> None:
    in_fim = False
    for position, (token, label) in enumerate(zip(ids, labels, strict=True)):
        where = band(position)
        totals["positions"][where] += 1
        totals["not_targets"][where] += label == IGNORED
        totals["end_of_text_targets"][where] += label == special.end_of_text
        in_fim = in_fim or token == special.fim_prefix
        totals["whole"]["fim_tokens"] += in_fim  # a FIM unit runs from <fim_prefix> to its end-of-text
        in_fim = in_fim and token != special.end_of_text
        if token == special.fim_middle:
            rest = list(zip(ids[position + 1 :], labels[position + 1 :], strict=True))
            close = next((i for i, (t, _) in enumerate(rest) if t == special.end_of_text), None)
            totals["whole"]["middles"] += 1
            if close is None or rest[close][1] == IGNORED:
                totals["whole"]["middles_cut"] += 1
            else:
                totals["middle_closes"][band(position + 1 + close)] += 1
    totals["whole"]["tokens"] += len(ids)


def replay(rows: int, seq_len: int, policy: FimPolicy, seed: int, tokenizer_path: Path) -> dict:
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    special = SpecialIds.of(tokenizer)
    rng = random.Random(seed)
    reader = Reader(load_corpus(fetch()).train, tokenizer, special, rng)
    totals: dict[str, Counter] = {k: Counter() for k in
                                  ("positions", "not_targets", "end_of_text_targets", "middle_closes", "whole")}
    for _ in range(rows):
        row = pack_row(reader, policy, seq_len, rng)
        count_row(row.ids, row.labels, special, totals)
    whole = totals["whole"]
    bands = {}
    for name in totals["positions"]:
        positions = totals["positions"][name]
        targets = positions - totals["not_targets"][name]
        bands[name] = {
            "not_targets": round(totals["not_targets"][name] / positions, 3),
            "end_of_text_share_of_targets": round(totals["end_of_text_targets"][name] / max(1, targets), 4),
            "middles_closing_here": round(totals["middle_closes"][name] / max(1, whole["middles"]), 3),
        }
    return {"rows": rows, "bands": bands, "middles": whole["middles"],
            "middles_cut_before_their_end": whole["middles_cut"],
            "fim_token_share": round(whole["fim_tokens"] / whole["tokens"], 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--fim-rate", type=float, default=0.9)
    parser.add_argument("--spm-rate", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--tokenizer", type=Path, default=Path("models/nano-starcoder/tokenizer.json"))
    args = parser.parse_args(argv)
    policy = FimPolicy(fim_rate=args.fim_rate, spm_rate=args.spm_rate)
    print(json.dumps(replay(args.rows, args.seq_len, policy, args.seed, args.tokenizer), indent=2))


if __name__ == "__main__":
    main()
