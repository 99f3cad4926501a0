"""nano-starcoder's row packer, on the shipped tokenizer: full rows, middles that close, no positional end.

v5's packer left padding and a closing end-of-text at the end of most rows and
the model learned both; these tests pin what v6's packer guarantees instead.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from tokenizers import Tokenizer

from training.corpus import SourceFile
from training.fim import FimPolicy, SpecialIds
from training.packing import IGNORED, Reader, pack_row

from ..conftest import NANO

SEQ_LEN = 512


def function(index: int) -> str:
    return f"def step_{index}(value):\n    total = value * {index}\n    return total + 1\n\n\n"


FILES = [SourceFile(f"pkg/mod{n}.py", "".join(function(n * 100 + i) for i in range(8 + 5 * n))) for n in range(12)]


@pytest.fixture(scope="module")
def rows():
    tokenizer = Tokenizer.from_file(str(NANO / "tokenizer.json"))
    special = SpecialIds.of(tokenizer)
    rng = random.Random(7)
    reader = Reader(FILES, tokenizer, special, rng)
    return special, tokenizer, [pack_row(reader, FimPolicy(0.9, 0.9), SEQ_LEN, rng) for _ in range(200)]


def test_every_row_is_full_and_no_position_is_padding(rows):
    special, _, packed = rows
    for ids, labels, _ in packed:
        assert len(ids) == len(labels) == SEQ_LEN
        # Only a unit's first token may go untrained, so a row has a handful at most.
        assert sum(label == IGNORED for label in labels) <= 12


def test_every_middle_closes_with_a_trained_end_of_text_in_its_row(rows):
    special, _, packed = rows
    middles = 0
    for ids, labels, _ in packed:
        for at in (i for i, token in enumerate(ids) if token == special.fim_middle):
            close = ids.index(special.end_of_text, at)  # raises when the middle runs off the row
            assert labels[close] == special.end_of_text
            middles += 1
    assert middles > 200


def test_middles_close_at_every_depth_of_the_row(rows):
    special, _, packed = rows
    closes: Counter[int] = Counter()
    for ids, _labels, _ in packed:
        for at in (i for i, token in enumerate(ids) if token == special.fim_middle):
            closes[ids.index(special.end_of_text, at) * 4 // SEQ_LEN] += 1
    # v5 closed 85 % of its middles in the last 16 positions; here each quarter gets a fair share.
    assert min(closes[q] for q in range(4)) > 0.1 * sum(closes.values())


def test_running_code_ends_only_where_a_file_does(rows):
    special, tokenizer, packed = rows
    texts = [f.text for f in FILES]
    checked = 0
    for ids, labels, _ in packed:
        # Every label is its own token (the model shifts them) or not a target.
        assert all(label in (token, IGNORED) for label, token in zip(labels, ids, strict=True))
        running = ids[: ids.index(special.fim_prefix)] if special.fim_prefix in ids else ids
        for piece in tokenizer.decode(running, skip_special_tokens=False).split("<|endoftext|>")[:-1]:
            body = piece.split("\n", 1)[1] if piece.startswith("<filename>") else piece
            # Running text before an end-of-text is the end of a file, never a file cut short.
            assert any(text.endswith(body) for text in texts)
            checked += 1
    assert checked > 5


def test_each_middle_start_is_marked_once_where_its_first_token_is_the_label(rows):
    special, _, packed = rows
    for ids, labels, starts in packed:
        assert len(starts) == SEQ_LEN
        middles = [i for i, token in enumerate(ids) if token == special.fim_middle]
        assert sum(starts) == len(middles)
        for at in (i for i, start in enumerate(starts) if start):
            assert labels[at] == ids[at] != -100  # a trained target, inside its middle's sample
            assert max(m for m in middles if m < at) < at <= ids.index(special.end_of_text, at)
