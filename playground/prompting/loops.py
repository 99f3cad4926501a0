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

``Loops.end`` is a function of the text alone (the end of the first such run),
so the stream, the stop decision and the record agree; it remembers how far
it scanned each text it was asked about, so a stream's growing text (or each
candidate's) is scanned once, a constant amount of work per character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_UNIT = 100
MIN_COPIES = 4
MIN_CHARS = 48
_SCANS = 8  # texts remembered at once: one per candidate of a fill (params.n is at most 8)


# By unit length: how many characters past a run's first copy must repeat it for the run to be a loop.
_NEEDED = [0] + [(max(MIN_COPIES, -(-MIN_CHARS // unit)) - 1) * unit for unit in range(1, MAX_UNIT + 1)]


@dataclass
class _Scan:
    text: str = ""  # scanned so far; it stops growing at the loop's end
    runs: dict[int, int] = field(default_factory=dict)  # by unit length: characters so far that repeat it
    recent: dict[str, list[int]] = field(default_factory=dict)  # by character: where in the last MAX_UNIT
    end: int | None = None

    def extend(self, text: str) -> None:
        """Scan the characters of ``text`` (which begins with ``self.text``) not scanned yet. Only the units
        that end on an earlier copy of the character can go on repeating, so only those are counted."""
        for at in range(len(self.text), len(text)):
            char = text[at]
            recent = [seen for seen in self.recent.get(char, ()) if at - seen <= MAX_UNIT]
            self.runs = {at - seen: self.runs.get(at - seen, 0) + 1 for seen in recent}
            recent.append(at)
            self.recent[char] = recent
            for unit, run in self.runs.items():
                if run >= _NEEDED[unit] and any(c.isalpha() for c in text[at - unit + 1 : at + 1]):
                    self.text, self.end = text[: at + 1], at + 1
                    return
        self.text = text


class Loops:
    """The end of the first loop in texts, each one a stream's text as it grows."""

    def __init__(self) -> None:
        self._scans: list[_Scan] = []

    def end(self, text: str) -> int | None:
        """Where the first loop in ``text`` ends (its last copy's end), or None if there is none yet."""
        scan = next((s for s in self._scans if text.startswith(s.text) or s.text.startswith(text)), None)
        if scan is None:
            scan = _Scan()
            self._scans = [scan, *self._scans[: _SCANS - 1]]
        if scan.end is None and len(text) > len(scan.text):
            scan.extend(text)
        return scan.end if scan.end is not None and scan.end <= len(text) else None
