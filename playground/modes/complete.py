"""Completion: the user's text is the prompt, continued as it is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from playground.modes.base import ModeContext, Presented, Restored, user_stops
from playground.prompting.complete import build_complete
from playground.prompting.prepared import Prepared
from playground.record import Generation


class CompleteMode:
    name = "complete"
    stops: tuple[str, ...] = ()
    candidates = True  # whether params.n > 1 applies

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared:
        return build_complete(inputs.get("prompt", ""), ctx.budget, ctx.count)

    def present(self, prepared: Prepared, raw: str) -> Presented:
        return Presented(raw)

    def offset(self, raw: str) -> int:
        return 0

    def deltas(self, prepared: Prepared, raw: Iterator[str]) -> Iterator[str]:
        return raw

    def restore(self, record: Generation) -> Restored:
        prompt = record.inputs["prompt"]
        return Restored({"prompt": prompt}, prompt + record.text, user_stops=user_stops(record, self.stops))
