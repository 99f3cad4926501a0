"""Fill in the middle: code with one ``<FILL_HERE>`` hole; the middle is spliced back in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from playground.modes.base import ModeContext, Presented, Restored, user_stops
from playground.prompting.fill import build_fill, strip_suffix_echo
from playground.prompting.prepared import Prepared
from playground.record import Generation


class FillMode:
    name = "fill"
    stops: tuple[str, ...] = ()

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared:
        return build_fill(inputs.get("code", ""), inputs.get("filename") or "", ctx.spec, ctx.budget, ctx.count)

    def present(self, prepared: Prepared, raw: str) -> Presented:
        assert prepared.hole is not None, "a fill prompt always keeps the code around its hole"
        prefix, suffix = prepared.hole
        middle = strip_suffix_echo(raw, suffix)
        return Presented(prefix + middle + suffix, middle)

    def deltas(self, raw: Iterator[str]) -> Iterator[str]:
        return raw

    def restore(self, record: Generation) -> Restored:
        inputs = {"code": record.inputs["code"], "filename": record.inputs.get("filename", "")}
        return Restored(inputs, record.text, record.middle, user_stops=user_stops(record, self.stops))
