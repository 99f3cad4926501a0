"""Where a fill's middle ends: at a repeat of the code after the hole, or where it leaves the hole's scope.

Small FIM models (and large ones, with long holes) often write a good middle
and then carry on: a new function after the one being filled, or the code
below the hole all over again. Both are visible in the text as it streams:

* a line indented less than the hole's own line (the block that holds the
  hole has ended), unless it closes a bracket the middle itself opened;
* the start of the code after the hole (``echo_start``).

(One word or line over and over is every mode's concern: the stream stage
stops it, ``playground.prompting.loops``.)

``middle_end`` finds the earliest such point, and says whether more text could
still move it (text held back while streaming) or not (the generation can
stop). The same function serves the stream, the stop decision and the record,
so the deltas a client gets join into the recorded middle exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playground.prompting.fill import Hole, echo_start

__all__ = ["Hole", "MiddleEnd", "ended_note", "middle_end", "settled_middle"]

Why = Literal["scope", "repeat"]
_OPENERS, _CLOSERS = "([{", ")]}"
_TAB = 4  # a tab's width when comparing indentation


@dataclass(frozen=True)
class MiddleEnd:
    """The middle is ``raw[:at]``. ``final``: no later text can change that. ``why``: what ended it
    before the raw text did (None: nothing has, or only text that may still become an end is held)."""

    at: int
    final: bool
    why: Why | None = None


def middle_end(raw: str, hole: Hole) -> MiddleEnd:
    """The middle within the raw generated text, as far as it can be told now: the earliest end, certain
    (the generation can stop there) or not yet (text held back while streaming, since it may still
    become an end); all of it when there is none. A certain end behind a pending one is not final yet:
    the pending one may still become certain, and earlier."""
    return min(_ends(raw, hole) or [MiddleEnd(len(raw), False)], key=lambda end: (end.at, not end.final))


def settled_middle(raw: str, hole: Hole) -> tuple[str, Why | None]:
    """The middle of a finished generation (text that was pending can no longer become an end), and
    what ended it early (None: the model itself)."""
    certain = [end for end in _ends(raw, hole) if end.final]
    if not certain:
        return raw, None
    end = min(certain, key=lambda end: end.at)
    return raw[: end.at], end.why


def _ends(raw: str, hole: Hole) -> list[MiddleEnd]:
    """Every place the middle may end: a repeat of the code after the hole, and leaving the hole's block."""
    ends = []
    echo = echo_start(raw, hole.suffix)
    if echo is not None:
        ends.append(MiddleEnd(echo[0], echo[1], "repeat" if echo[1] else None))
    scope = _scope_end(raw, hole.prefix) if hole.end_at_scope else None
    if scope is not None:
        ends.append(scope)
    return ends


def _indent(line: str) -> int:
    """The width of a line's leading spaces and tabs."""
    return len(line[: len(line) - len(line.lstrip(" \t"))].expandtabs(_TAB))


def _scope_end(raw: str, prefix: str) -> MiddleEnd | None:
    """Where the middle leaves the hole's block, or where text that may yet do so begins; None if neither."""
    first, newline, rest = raw.partition("\n")
    if not newline:
        return None  # the hole's own line is always the middle's
    hole_line = prefix.rpartition("\n")[2]
    # The hole's line as the middle leaves it: an empty line takes the middle's own indentation.
    scope = _indent(hole_line + first if not hole_line.strip() else hole_line)
    depth = _bracket_depth(first)
    blank_from: int | None = None  # where the run of blank lines before the current line began
    position = len(first)  # index of the newline that starts the current line
    for line in rest.split("\n"):
        if not line.strip():
            blank_from = position if blank_from is None else blank_from
        else:
            indent = _indent(line)
            closes = depth > 0 and line.lstrip()[0] in _CLOSERS
            if indent < scope and not closes:
                return MiddleEnd(position if blank_from is None else blank_from, True, "scope")
            depth += _bracket_depth(line)
            blank_from = None
        position += len(line) + 1
    if blank_from is not None:  # blank lines at the end: the next line may still leave the scope
        return MiddleEnd(blank_from, False)
    return None


def _bracket_depth(line: str) -> int:
    """Opened minus closed brackets (strings and comments are not told apart: an estimate is enough)."""
    return sum(line.count(c) for c in _OPENERS) - sum(line.count(c) for c in _CLOSERS)


def ended_note(why: Why, middle: str) -> str:
    """What the record says when the app ended a fill."""
    if why == "repeat":
        return "The fill was ended where the model began repeating the code after the hole."
    lines = middle.count("\n") + 1
    return (f"The fill was ended after {lines} line{'s' if lines != 1 else ''}, where the model's code left the "
            "hole's block (a line indented less than the hole). Turn off \"End fills at the hole's scope\" to let "
            "it run on.")
