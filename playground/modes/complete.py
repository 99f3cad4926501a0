"""Completion: the user's text is the prompt, continued as it is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import Field

from playground.modes.base import ModeContext, ModeInputs, Restored, user_params
from playground.prompting.complete import build_complete
from playground.prompting.prepared import Prepared
from playground.record import Generation, Shown


class CompleteInputs(ModeInputs):
    prompt: str = Field(description="The text to continue, as is.")


class CompleteMode:
    name: ClassVar[str] = "complete"
    stops: tuple[str, ...] = ()
    candidates: ClassVar[bool] = True
    own_params: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[type[ModeInputs]] = CompleteInputs
    generated_field: ClassVar[str | None] = None  # the record's text is the continuation itself

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[None]:
        return build_complete(inputs.get("prompt", ""), ctx.budget, ctx.count)

    def present(self, prepared: Prepared[Any], raw: str) -> Shown:
        return Shown(raw, raw)

    def offset(self, raw: str) -> int:
        return 0

    def ended(self, prepared: Prepared[Any], raw: str) -> str | None:
        return None  # ends only where the model or a stop sequence ends it

    def deltas(self, prepared: Prepared[Any], raw: Iterator[str]) -> Iterator[str]:
        return raw

    def restore(self, record: Generation) -> Restored:
        return Restored({"prompt": record.inputs["prompt"]}, user_params(record, self.stops))
