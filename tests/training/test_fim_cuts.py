"""Where nano-starcoder's training and evaluation cut a hole, against the shipped tokenizer.

A hole cut after a newline leaves the middle starting on a bare indentation
token that running text never has; left to right that mis-tokenization costs
nats that were once counted as FIM gain. These tests pin the cut that avoids it.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from training.corpus import SourceFile
from training.evaluate_nano_starcoder import LineCase, Scorer, context_honesty, pick_lines, without_dominant_file
from training.fim import ONE_LINE_HOLES, FimPolicy, choose_hole

from ..conftest import NANO

CODE = (
    "import os\n\n\n"
    "def read(path):\n"
    "    with open(path) as handle:\n"
    "        text = handle.read()\n"
    "    lines = text.splitlines()\n"
    "    return [line for line in lines if line]\n"
)


@pytest.fixture(scope="module")
def encode():
    tokenizer = Tokenizer.from_file(str(NANO / "tokenizer.json"))
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def test_evaluation_holes_start_at_the_newline_before_the_line():
    cases = pick_lines([SourceFile("read.py", CODE)], 10, random.Random(0))
    assert {c.line for c in cases} == {
        "\ndef read(path):", "\n    with open(path) as handle:", "\n        text = handle.read()",
        "\n    lines = text.splitlines()", "\n    return [line for line in lines if line]",
    }
    for case in cases:
        assert case.prefix + case.line + case.suffix == CODE
        assert case.suffix.startswith("\n")


def test_evaluation_pieces_tokenize_as_the_whole_text_does(encode):
    for case in pick_lines([SourceFile("read.py", CODE)], 10, random.Random(0)):
        assert encode(case.prefix) + encode(case.line) + encode(case.suffix) == encode(CODE)
    # The cut after the newline, as the evaluation once made, does not: the indentation splits off.
    start = CODE.index("    lines")
    end = CODE.index("    return")
    assert encode(CODE[:start]) + encode(CODE[start:end]) + encode(CODE[end:]) != encode(CODE)


def test_training_draws_whole_line_holes_in_both_shapes():
    policy = FimPolicy(whole_lines_share=1.0, rest_of_line_share=0.0)
    rng = random.Random(1)
    code = CODE.replace("\n\n\n", "\n")  # no blank lines, so each span has one reading
    spans = [choose_hole(code, rng, policy) for _ in range(200)]
    after_newline = [(a, b) for a, b in spans if a == 0 or code[a - 1] == "\n"]
    newline_first = [(a, b) for a, b in spans if code[a] == "\n" and a > 0 and code[a - 1] != "\n"]
    assert after_newline and newline_first
    assert len(after_newline) + len(newline_first) == len(spans)
    assert all(b == len(code) or code[b - 1] == "\n" for a, b in after_newline)
    assert all(code[b] == "\n" for a, b in newline_first)


def test_training_draws_holes_that_start_after_the_indentation():
    """The hole a user makes with ``    <FILL_HERE>``: the prefix ends on the indentation, the suffix starts with the newline."""
    policy = FimPolicy(whole_lines_share=0.0, rest_of_line_share=1.0, after_indent_share=1.0)
    rng = random.Random(2)
    spans = {choose_hole(CODE, rng, policy) for _ in range(200)}
    after_indent = {(a, b) for a, b in spans if CODE[b] == "\n" and CODE[a - 1] in " \n" and CODE[a] not in " \n"}
    assert (CODE.index("text = handle"), CODE.index("\n    lines")) in after_indent
    # Blank lines have no code to start at; their holes fall back to a random start.
    assert spans - after_indent and all(CODE[a:b].strip() == "" for a, b in spans - after_indent)


def test_evaluation_reports_fim_without_a_file_that_dominates_the_sample():
    """In the stdlib split one generated file gives most lines; its lines are also left out once."""
    big = SourceFile("big.py", "".join(f"value_{i} = compute({i})\n" for i in range(40)))
    files = [big, SourceFile("read.py", CODE)]
    cases = pick_lines(files, 12, random.Random(0))
    scorer = Scorer(NANO)
    pieces = [scorer.line_ids(case) for case in cases]
    report = without_dominant_file(scorer, cases, pieces)
    others = sum(case.path == "read.py" for case in cases)
    assert report["dominant_file"] == {"path": "big.py", "lines": len(cases) - others}
    assert report["fim_spm_without_dominant_file"]["lines_scored"] == others > 0
    # No file over a quarter of the lines: nothing extra.
    spread = [LineCase("x = 1", "\ny = 2", "\n", f"file_{i}.py") for i in range(4)]
    assert without_dominant_file(scorer, spread, [scorer.line_ids(case) for case in spread]) == {}


def test_most_rest_of_line_holes_stop_before_the_newline():
    """--before-newline-holes: the shape only the suffix can end (the newline starts the suffix) is trained most."""
    policy = FimPolicy(whole_lines_share=0.0, rest_of_line_share=1.0, after_indent_share=0.0, before_newline_share=0.8)
    rng = random.Random(3)
    code = CODE.replace("\n\n\n", "\n")
    spans = [choose_hole(code, rng, policy) for _ in range(400)]
    before_newline = sum(b < len(code) and code[b] == "\n" for a, b in spans)
    assert 0.65 < before_newline / len(spans) < 0.9  # 80 %, less the holes that start on the newline itself


def test_a_line_scored_under_the_no_empty_fill_rule_loses_only_the_end_before_its_first_visible_token():
    """The rule takes end-of-text out until the middle has written something, and renormalizes: the line's
    score rises by exactly -log(1 - p(end-of-text)) at each of those positions, and nowhere else."""
    scorer = Scorer(NANO)
    prefix, suffix = scorer.encode("x = 1"), scorer.encode("\nprint(x, y)\n")
    line = scorer.encode("\n    y = 2")
    context = scorer.fim_context(prefix, suffix, "spm")
    plain, under_rule, _ = scorer.target_logprob(context, line)
    first_visible = next(i for i, token in enumerate(line) if not scorer.blank[token])
    with torch.inference_mode():
        logits = scorer.model(torch.tensor([context + line])).logits[0, len(context) - 1:]
    p_end = torch.softmax(logits, -1)[: first_visible + 1, scorer.eot]
    assert first_visible >= 1  # the newline and the indentation come first
    assert under_rule - plain == pytest.approx(-float(torch.log1p(-p_end).sum()), abs=1e-4)
    assert under_rule > plain


def test_one_line_holes_make_single_lines_the_common_whole_line_hole():
    """``--one-line-holes``: three in four whole-line holes take one line (v6: one in two)."""
    code = CODE.replace("\n\n\n", "\n")
    one_line = FimPolicy(**{**ONE_LINE_HOLES, "rest_of_line_share": 0.0, "whole_lines_share": 1.0})
    v6_shape = FimPolicy(whole_lines_share=1.0, rest_of_line_share=0.0)

    def lines_per_hole(policy: FimPolicy) -> list[int]:
        rng = random.Random(3)
        return [code[a:b].strip("\n").count("\n") + 1 for a, b in (choose_hole(code, rng, policy) for _ in range(400))]

    assert 0.65 < lines_per_hole(one_line).count(1) / 400 < 0.85
    assert 0.4 < lines_per_hole(v6_shape).count(1) / 400 < 0.6


def test_context_honesty_scores_the_late_tokens_twice_and_counts_windows_at_a_files_head():
    """The late 128 tokens are scored after their window and on their own; on real code nano-starcoder is
    better with the longer prompt. A file only a little longer than a window always puts its head early."""
    scorer = Scorer(NANO)
    argparse_source = Path(argparse.__file__).read_text()  # real code, long enough for many windows
    ids = scorer.encode(argparse_source)
    cut = len(scorer.tok.decode(ids[: scorer.context + 64]))
    short = SourceFile("short.py", argparse_source[:cut])  # at most 64 tokens past one window
    report = context_honesty(scorer, [SourceFile("argparse.py", argparse_source)], 6, random.Random(0))
    assert report["late_tokens_loss_after_the_window"] < report["late_tokens_loss_on_their_own"]
    assert report["windows_where_the_longer_prompt_helps"] >= 4
    heads = context_honesty(scorer, [short], 3, random.Random(0))
    assert heads["windows_starting_in_their_files_first_128_tokens"] == 3
    assert heads["loss_positions_0_127_384_511_other_windows"] is None  # no other windows to average
