"""Fill-in-the-middle training samples, as StarCoder was trained.

A window of source text is cut into prefix / middle / suffix and rearranged
so the model learns to write the middle after seeing both sides (how often,
and how long the windows are, is ``training.packing``'s business):

    PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <|endoftext|>
    SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle <|endoftext|>

The pieces are tokenized separately, which is exactly what happens at
inference time when a user marks a hole: the token boundary always falls at
the hole.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tokenizers import Tokenizer

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class SpecialIds:
    end_of_text: int
    fim_prefix: int
    fim_middle: int
    fim_suffix: int
    filename: int

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> SpecialIds:
        tokens = ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<filename>")
        return cls(*(tokenizer.token_to_id(token) for token in tokens))


@dataclass(frozen=True)
class FimPolicy:
    fim_rate: float = 0.5  # share of a row's units that are FIM samples (StarCoder: 0.5)
    spm_rate: float = 0.5  # share of FIM samples in suffix-prefix-middle order
    # How the hole is chosen. Users mostly mark whole lines or the rest of a
    # line, so those get most of the budget; random spans keep the model general.
    whole_lines_share: float = 0.4
    rest_of_line_share: float = 0.3
    newline_first_share: float = 0.5  # whole-line holes that start at the newline before them
    after_indent_share: float = 0.5  # rest-of-line holes that start where the line's code starts
    before_newline_share: float = 0.0  # other rest-of-line holes that stop before the newline
    # How many lines a whole-line hole takes, drawn uniformly from this tuple (v6: one line half the time).
    line_counts: tuple[int, ...] = (1, 1, 1, 1, 2, 2, 3, 4)


# A hole that ends where its line ends leaves the line's newline either in the middle or at the start of
# the suffix. The second is the shape a user's "    <FILL_HERE>" makes, and the harder one to end: only
# the suffix says the middle is complete (a middle ending on a bare "\n" token says so by itself). v6
# trained half its line holes each way and, after a correct line, gave end-of-text 0.18 in the second
# shape against 0.57 in the first. These shares give most holes the second shape (``--before-newline-holes``:
# the runs after v6 that the model card reports; none shipped).
BEFORE_NEWLINE_HOLES = {"newline_first_share": 0.8, "after_indent_share": 0.6, "before_newline_share": 0.8}

# Single whole-line holes were 20 % of v6's FIM units (40 % whole lines, half of those one line), and after
# a correct line it gives end-of-text 0.008. These shares make single lines the most common hole, the shape
# of the evaluation and of most edits (``--one-line-holes``: 60 % whole lines, three in four of them one
# line), to test whether the data's mix teaches the end where a loss weight only raised its level. It did
# not (the model card's "v8a": 0.006 after 750 steps); not shipped.
ONE_LINE_HOLES = {"whole_lines_share": 0.6, "rest_of_line_share": 0.25, "line_counts": (1, 1, 1, 1, 1, 1, 2, 3)}


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 < len(text))
    return starts


def choose_hole(text: str, rng: random.Random, policy: FimPolicy) -> tuple[int, int]:
    """Pick the [start, end) character span that becomes the middle."""
    starts = _line_starts(text)
    roll = rng.random()
    if len(starts) >= 3 and roll < policy.whole_lines_share:
        count = min(len(starts) - 1, rng.choice(policy.line_counts))
        first = rng.randrange(0, len(starts) - count)
        end = starts[first + count] if first + count < len(starts) else len(text)
        if first > 0 and text[end - 1] == "\n" and rng.random() < policy.newline_first_share:
            # The same lines with the hole moved one character back: "\n" + the lines, so each
            # side of the hole ends where the tokenizer would split anyway. Without this shape a
            # middle always starts on a bare indentation token, which running text never has.
            return starts[first] - 1, end - 1
        return starts[first], end
    if len(starts) >= 2 and roll < policy.whole_lines_share + policy.rest_of_line_share:
        line = rng.randrange(0, len(starts) - 1)
        line_end = starts[line + 1]
        if rng.random() < policy.after_indent_share:
            # The hole a user makes most: "    <FILL_HERE>" on a line of its own. The prefix then
            # ends on a whole indentation token, which running text never has before a word, so
            # the model must see this shape in training; the hole stops before the newline.
            code_start = line_end - len(text[starts[line] : line_end].lstrip(" \t"))
            if code_start < line_end - 1 and text[line_end - 1] == "\n":
                return code_start, line_end - 1
        start = rng.randrange(starts[line], line_end)
        # Checked first, so a share of 0 draws nothing and v6's random stream stays as it was.
        if (policy.before_newline_share and start < line_end - 1 and text[line_end - 1] == "\n"
                and rng.random() < policy.before_newline_share):
            return start, line_end - 1
        return start, line_end
    a, b = sorted(rng.randrange(0, len(text) + 1) for _ in range(2))
    return a, b


def fim_sample(
    text: str, *, encode: Encode, ids: SpecialIds, policy: FimPolicy, rng: random.Random,
    filename: str | None = None,
) -> tuple[list[int], int]:
    """Token ids of ``text`` cut at a hole and rearranged (the middle always closes with end-of-text),
    and the index of the middle's first token (its end-of-text when the middle is empty)."""
    metadata = [ids.filename, *encode(filename + "\n")] if filename else []
    start, end = choose_hole(text, rng, policy)
    prefix = metadata + encode(text[:start])
    middle = encode(text[start:end])
    suffix = encode(text[end:])
    if rng.random() < policy.spm_rate:
        context = [ids.fim_prefix, ids.fim_suffix, *suffix, ids.fim_middle, *prefix]
    else:
        context = [ids.fim_prefix, *prefix, ids.fim_suffix, *suffix, ids.fim_middle]
    return [*context, *middle, ids.end_of_text], len(context)
