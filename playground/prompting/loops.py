"""Where generated text falls into a loop: the same piece written over and over, back to back.

Small models greedy-decoding a fill sometimes lock onto one word or one line
(``"Return a new new new new ..."``, ``self.y = y`` line after line) and
would go on to the token limit. A run counts as a loop when one piece of text
(a unit of up to ``MAX_UNIT`` characters, holding a letter, so rows of
zeros, rules of dashes and indentation never count) repeats back to back at
least ``MIN_COPIES`` times and over at least ``MIN_CHARS`` characters: twelve
``"new "``, eight ``"None, "``, four copies of a line of twenty. Real code
does that too, rarely: scanned whole, one in about 450 modules of the
standard library and site-packages holds such a run in its first 8,000
characters (looser rules found four, and three copies of a line found many).

What the loop leaves of the text is its first two copies (``"a new new"``):
once two copies of a unit stand back to back, what follows is held back while
it goes on repeating them, and given back when the run breaks. Double letters
make such pairs all the time, but they break at once, so the hold costs
ordinary code nothing.

``Loops.find`` is a function of the text alone, so the stream, the stop
decision and the record agree; it remembers its scan of each text it was asked
about, so a stream's growing text (or each candidate's) is scanned once, a
few microseconds a character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_UNIT = 100
MIN_COPIES = 4
MIN_CHARS = 48
_SCANS = 8  # texts remembered at once: one per candidate of a fill (params.n is at most 8)

# By unit length: how many characters past a run's first copy must repeat it for the run to be a loop.
_NEEDED = [0] + [(max(MIN_COPIES, -(-MIN_CHARS // unit)) - 1) * unit for unit in range(1, MAX_UNIT + 1)]


@dataclass(frozen=True)
class Loop:
    """The text ends at ``at``, after a run's second copy: for certain (``final``: the run is a loop),
    or while the run may still become one (text past ``at`` is held back)."""

    at: int
    final: bool


@dataclass
class _Scan:
    text: str = ""  # scanned so far; it stops growing at the first loop
    runs: dict[int, int] = field(default_factory=dict)  # by unit length: characters so far that repeat it
    recent: dict[str, list[int]] = field(default_factory=dict)  # by character: where in the last MAX_UNIT
    holds: list[int] = field(default_factory=list)  # by text length - 1: where holding back begins
    loop: Loop | None = None

    def extend(self, text: str) -> None:
        """Scan the characters of ``text`` (which begins with ``self.text``) not scanned yet. Only the units
        that end on an earlier copy of the character can go on repeating, so only those are counted."""
        for at in range(len(self.text), len(text)):
            char = text[at]
            recent = [seen for seen in self.recent.get(char, ()) if at - seen <= MAX_UNIT]
            self.runs = runs = {at - seen: self.runs.get(at - seen, 0) + 1 for seen in recent}
            recent.append(at)
            self.recent[char] = recent
            # A run of two copies or more holds back what goes past its second copy.
            pairs = [unit for unit, run in runs.items() if run >= unit and _has_letter(text, at, unit)]
            hold = min((at + 1 - runs[unit] + unit for unit in pairs), default=at + 1)
            self.holds.append(hold)
            if any(runs[unit] >= _NEEDED[unit] for unit in pairs):
                self.text, self.loop = text[: at + 1], Loop(hold, True)
                return
        self.text = text


def _has_letter(text: str, at: int, unit: int) -> bool:
    return any(c.isalpha() for c in text[at - unit + 1 : at + 1])


class Loops:
    """The first loop in texts, each one a stream's text as it grows."""

    def __init__(self) -> None:
        self._scans: list[_Scan] = []

    def find(self, text: str) -> Loop | None:
        """The first loop in ``text``, or a run that may still become one at its end; None if neither."""
        scan = next((s for s in self._scans if text.startswith(s.text) or s.text.startswith(text)), None)
        if scan is None:
            scan = _Scan()
            self._scans = [scan, *self._scans[: _SCANS - 1]]
        if scan.loop is None and len(text) > len(scan.text):
            scan.extend(text)
        if scan.loop is not None and len(scan.text) <= len(text):
            return scan.loop
        hold = scan.holds[len(text) - 1] if text else 0
        return Loop(hold, False) if hold < len(text) else None
