"""Where generated text falls into a loop: the same piece written over and over, back to back.

Small models sometimes lock onto one word or one line (nano-starcoder fills
``def add(a, b):`` with ``"Return a new new new new ..."``, and completes
``print(`` with ``self.name = name`` line after line) and would go on to the
token limit. A run counts as a loop when one piece of text (a unit of up to
``MAX_UNIT`` characters) repeats back to back at least ``MIN_COPIES`` times
and over at least ``MIN_CHARS`` characters: twelve ``"new "``, eight
``"None, "``, four copies of a line of twenty. A unit with digits but no
letter needs ``MIN_DIGIT_CHARS`` (a row of 32 ``"2, "``: short rows of zeros
are ordinary data), and one with neither never counts (rules of dashes,
indentation, blank lines). Real code does that too, rarely: one in 465
modules of the standard library and site-packages holds such a run in its
first 8,000 characters, a serialized parser table (``bench/bench_loops.py``;
looser rules found four or more).

What the loop leaves of the text is its first two copies (``"a new new"``):
once two copies of a unit stand back to back, what follows is held back while
it goes on repeating them, and given back when the run breaks. Double letters
make such pairs all the time, but they break at once, so the hold costs
ordinary code nothing.

The stream stage asks ``Loops.find`` about each text as it grows (one
``Loops`` per stream, or per candidate), and cuts and holds back text as it
does for stop sequences. The answer is a function of the text alone, and each
character is scanned once, a few microseconds apiece.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_UNIT = 100
MIN_COPIES = 4
MIN_CHARS = 48
MIN_DIGIT_CHARS = 96


def _past_first_copy(chars: int) -> list[int]:
    """By unit length: how many characters past a run's first copy must repeat it for a loop."""
    return [0] + [(max(MIN_COPIES, -(-chars // unit)) - 1) * unit for unit in range(1, MAX_UNIT + 1)]


_NEEDED, _NEEDED_DIGITS = _past_first_copy(MIN_CHARS), _past_first_copy(MIN_DIGIT_CHARS)


@dataclass(frozen=True)
class Loop:
    """The text ends at ``at``, after a run's second copy: for certain (``final``: the run is a loop),
    or while the run may still become one (text past ``at`` is held back)."""

    at: int
    final: bool


class Loops:
    """The first loop in one text, asked about as the text grows."""

    def __init__(self) -> None:
        self.text = ""  # scanned so far; it stops growing at the first loop
        self.loop: Loop | None = None
        self._runs: dict[int, int] = {}  # by unit length: characters so far that repeat it, back to back
        self._recent: dict[str, list[int]] = {}  # by character: where it stands in the last MAX_UNIT
        self._hold = 0  # where text that may yet become a loop begins (the text's length: none)

    def find(self, text: str) -> Loop | None:
        """The first loop in ``text`` (which goes on from the text asked about before), or a run at its end
        that may still become one; None if neither."""
        if self.loop is None:
            self._scan(text)
        if self.loop is not None:
            return self.loop
        return Loop(self._hold, False) if self._hold < len(text) else None

    def _scan(self, text: str) -> None:
        """Only the units that end on an earlier copy of a character can go on repeating, so only those
        are counted. (A hot path: once per character streamed, hence the locals.)"""
        runs, recent_of, hold = self._runs, self._recent, self._hold
        for at in range(len(self.text), len(text)):
            char = text[at]
            recent = recent_of.get(char)
            if recent is None:
                recent_of[char], runs, hold = [at], {}, at + 1
                continue
            if at - recent[0] > MAX_UNIT:
                recent = recent_of[char] = [seen for seen in recent if at - seen <= MAX_UNIT]
            runs = {at - seen: runs.get(at - seen, 0) + 1 for seen in recent}
            recent.append(at)
            # A run of two copies or more holds back what goes past its second copy; a long enough one is a loop.
            hold, final = at + 1, False
            for unit, run in runs.items():
                if run >= unit and (needed := _needed(text, at, unit)) is not None:
                    hold, final = min(hold, at + 1 - run + unit), final or run >= needed
            if final:
                self.text, self.loop = text[: at + 1], Loop(hold, True)
                return
        self.text, self._runs, self._hold = text, runs, hold


def _needed(text: str, at: int, unit: int) -> int | None:
    """How long the run of the unit that ends at ``at`` must go on past its first copy to be a loop; None:
    never (a unit with neither a letter nor a digit)."""
    piece = text[at - unit + 1 : at + 1]
    if any(c.isalpha() for c in piece):
        return _NEEDED[unit]
    return _NEEDED_DIGITS[unit] if any(c.isdigit() for c in piece) else None
