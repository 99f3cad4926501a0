"""Rows of training tokens with code at every position and no padding.

v5 cut each file into windows of 496 tokens, made each window a sample and
packed whole samples into 512-token rows, padding what was left. Replaying its
rows (``python -m training.replay_rows``) shows what that taught: 85 % of the
FIM middles closed at positions 496-511 (a full window plus its sentinels),
where 69 % of the positions were padding and 16 % of the labelled tokens were
end-of-text, against 0.02 % everywhere else. So v5 learned to end a middle by
its position rather than where it meets the suffix, expected end-of-text near
the end of any window, and saw little running code in the last positions.

v6 reads the shuffled training files as one stream and fills each row exactly:

- a FIM unit is a window of random length from the current file, cut at a hole
  and rearranged (``training.fim``); its closing end-of-text therefore falls
  anywhere in the row, about equally often at every position. A unit never
  crosses rows, so no middle loses its prefix or suffix and every middle closes
  with a labelled end-of-text;
- a left-to-right unit is the stream's next tokens up to the end of the row;
  end-of-text appears there only where a file really ends;
- the first token of a unit that does not continue the text before it is not a
  target: nothing should learn to predict ``<fim_prefix>`` inside a file.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

import torch
from tokenizers import Tokenizer

from training.corpus import SourceFile
from training.fim import FimPolicy, SpecialIds, fim_sample

MIN_WINDOW, MAX_WINDOW = 24, 400  # tokens of text in a FIM unit (fewer where its file ends)
FIM_ROOM = 8  # what the sentinels, end-of-text and cutting at the hole can add to a window
METADATA_RATE = 0.5  # files that start with <filename>, as in StarCoder's data
IGNORED = -100  # the label that the loss skips


class Reader:
    """The training files, in a fresh seeded order each epoch, read as one stream of tokens."""

    def __init__(self, files: list[SourceFile], tokenizer: Tokenizer, ids: SpecialIds, rng: random.Random):
        self.files, self.ids, self.rng = files, ids, rng
        self.encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids
        encodings = tokenizer.encode_batch([f.text for f in files], add_special_tokens=False)
        self.tokens = [e.ids for e in encodings]
        self.offsets = [e.offsets for e in encodings]
        self.order: list[int] = []
        self._next_file()

    def _next_file(self) -> None:
        if not self.order:
            self.order = list(range(len(self.files)))
            self.rng.shuffle(self.order)
        self.file, self.position = self.order.pop(), 0
        self.filename = self.files[self.file].path if self.rng.random() < METADATA_RATE else None

    def _left(self) -> int:
        return len(self.tokens[self.file]) - self.position

    def running(self, count: int) -> list[int]:
        """The stream's next ``count`` tokens, left to right, with end-of-text where a file ends."""
        out: list[int] = []
        while len(out) < count:
            if self.position == 0 and self.filename:
                out += [self.ids.filename, *self.encode(self.filename + "\n")]
                self.filename = None
            take = min(count - len(out), self._left())
            out += self.tokens[self.file][self.position : self.position + take]
            self.position += take
            if self._left() == 0 and len(out) < count:
                out.append(self.ids.end_of_text)
                self._next_file()
        return out[:count]

    def window(self, count: int) -> tuple[str, str | None]:
        """The text of the current file's next ``count`` tokens (fewer where it ends), and its
        path when the window starts the file and the file carries its name."""
        while self._left() == 0:
            self._next_file()
        text, offsets = self.files[self.file].text, self.offsets[self.file]
        start, stop = self.position, min(self.position + count, len(offsets))
        char_end = offsets[stop - 1][1] if stop < len(offsets) else len(text)
        filename = self.filename if start == 0 else None
        self.filename, self.position = None, stop
        return text[offsets[start][0] : char_end], filename


class Row(NamedTuple):
    ids: list[int]
    labels: list[int]
    starts: list[bool]  # where a FIM middle's first token is the label: where a fill decides to begin


def pack_row(reader: Reader, policy: FimPolicy, seq_len: int, rng: random.Random) -> Row:
    """One row of exactly ``seq_len`` tokens, its labels and its middles' starts (see the module's docstring)."""
    row: list[int] = []
    labels: list[int] = []
    starts: list[bool] = []
    after_fim = False
    while (room := seq_len - len(row)) > 0:
        sample, middle_at = None, 0
        # The window's length does not depend on the room left: a window that does not fit ends the
        # row with running code instead, so middles close about as often at every position. (Drawn
        # to fit the room, 17 % of them closed in the last 16 positions.)
        count = rng.randint(MIN_WINDOW, MAX_WINDOW)
        if rng.random() < policy.fim_rate and count + FIM_ROOM <= room:
            text, filename = reader.window(count)
            if text:
                sample, middle_at = fim_sample(text, encode=reader.encode, ids=reader.ids, policy=policy,
                                               rng=rng, filename=filename)
            if sample is not None and len(sample) > room:
                sample = None  # cutting at the hole cost more than FIM_ROOM: rare, and never cut
        if sample is not None:
            row += sample
            labels += [IGNORED, *sample[1:]]
            starts += [i == middle_at for i in range(len(sample))]
            after_fim = True
            continue
        text_ids = reader.running(room)
        row += text_ids
        labels += [IGNORED if after_fim else text_ids[0], *text_ids[1:]]
        starts += [False] * len(text_ids)
        after_fim = False
    return Row(row, labels, starts)


def batches(reader: Reader, policy: FimPolicy, seq_len: int, batch_size: int,
            rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless seeded (input ids, labels, middle starts) batches of ``batch_size`` packed rows."""
    while True:
        rows = [pack_row(reader, policy, seq_len, rng) for _ in range(batch_size)]
        yield (torch.tensor([r.ids for r in rows]), torch.tensor([r.labels for r in rows]),
               torch.tensor([r.starts for r in rows]))
