"""Fill in the middle: code with one ``<FILL_HERE>`` hole; the middle is spliced back in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from playground.modes.base import ModeContext, Presented, Restored, user_stops
from playground.prompting.fill import build_fill, echo_start, strip_suffix_echo
from playground.prompting.prepared import Prepared
from playground.record import Generation


class FillMode:
    name = "fill"
    stops: tuple[str, ...] = ()
    candidates = True  # whether params.n > 1 applies

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared:
        return build_fill(inputs.get("code", ""), inputs.get("filename") or "", ctx.spec, ctx.budget, ctx.count)

    def present(self, prepared: Prepared, raw: str) -> Presented:
        assert prepared.hole is not None, "a fill prompt always keeps the code around its hole"
        prefix, suffix = prepared.hole
        middle = strip_suffix_echo(raw, suffix)
        return Presented(prefix + middle + suffix, middle)

    def offset(self, raw: str) -> int:
        return 0  # the middle is a prefix of the raw text

    def deltas(self, prepared: Prepared, raw: Iterator[str]) -> Iterator[str]:
        """The middle as it settles: text that could still turn out to repeat the code after the hole
        is held back until it cannot, and nothing past a repeat is sent, so the deltas join into the
        record's ``middle`` exactly."""
        assert prepared.hole is not None, "a fill prompt always keeps the code around its hole"
        suffix = prepared.hole[1]
        text, sent, repeated = "", 0, False
        for delta in raw:  # read to the end even after a repeat: the generation ends as it would have
            text += delta
            if repeated:
                continue
            settled, repeated = _settled(text, suffix)
            if len(settled) > sent:
                yield settled[sent:]
                sent = len(settled)
        final = strip_suffix_echo(text, suffix)
        if len(final) > sent:
            yield final[sent:]

    def restore(self, record: Generation) -> Restored:
        inputs = {"code": record.inputs["code"], "filename": record.inputs.get("filename", "")}
        return Restored(inputs, record.text, record.middle, user_stops=user_stops(record, self.stops))


def _settled(text: str, suffix: str) -> tuple[str, bool]:
    """(the part of a growing middle that can be shown now, whether a repeat of the suffix ended it);
    text that may still grow into a repeat is held back."""
    found = echo_start(text, suffix)
    return (text, False) if found is None else (text[: found[0]], found[1])
