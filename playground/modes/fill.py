"""Fill in the middle: code with one ``<FILL_HERE>`` hole; the middle is spliced back in.

The record lists the generated middle apart from the whole code, as ``middle``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import Field

from playground.modes.base import ModeContext, ModeInputs, Restored, user_params
from playground.prompting.fill import FILL_MARKER, build_fill
from playground.prompting.fill_end import Hole, ended_note, middle_end, settled_middle
from playground.prompting.prepared import Prepared
from playground.record import Generation, Shown


class FillInputs(ModeInputs):
    code: str = Field(description=f"The code, with exactly one {FILL_MARKER} where the model should write.")
    filename: str | None = Field("", description="The file's path, given to models that take it as metadata.")


class FillMode:
    name: ClassVar[str] = "fill"
    stops: tuple[str, ...] = ()
    candidates: ClassVar[bool] = True
    own_params: ClassVar[tuple[str, ...]] = ("end_at_scope",)
    inputs: ClassVar[type[ModeInputs]] = FillInputs
    generated_field: ClassVar[str | None] = "middle"

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[Hole]:
        return build_fill(inputs.get("code", ""), inputs.get("filename") or "", ctx.spec, ctx.budget, ctx.count,
                          end_at_scope=ctx.params.end_at_scope)

    def present(self, prepared: Prepared[Hole], raw: str) -> Shown:
        hole = prepared.state
        middle, _ = settled_middle(raw, hole)
        return Shown(hole.prefix + middle + hole.suffix, middle, {"middle": middle})

    def offset(self, raw: str) -> int:
        return 0  # the middle is a prefix of the raw text

    def ended(self, prepared: Prepared[Hole], raw: str) -> str | None:
        """A note when the middle has certainly ended before the raw text (the model can stop)."""
        hole = prepared.state
        end = middle_end(raw, hole)
        if not (hole.end_at_scope and end.final and end.why):
            return None
        return ended_note(end.why, raw[: end.at])

    def deltas(self, prepared: Prepared[Hole], raw: Iterator[str]) -> Iterator[str]:
        """The middle as it settles: text that could still turn out to repeat the code after the hole,
        or to leave the hole's block, is held back until it cannot, and nothing past the middle's end
        is sent, so the deltas join into the record's ``middle`` exactly."""
        hole = prepared.state
        text, sent, ended = "", 0, False
        for delta in raw:  # read to the end: the stream stage stops the model once the middle has ended
            text += delta
            if ended:
                continue
            end = middle_end(text, hole)
            ended = end.final
            if end.at > sent:
                yield text[sent : end.at]
                sent = end.at
        final, _ = settled_middle(text, hole)
        if len(final) > sent:
            yield final[sent:]

    def restore(self, record: Generation) -> Restored:
        inputs = {"code": record.inputs["code"], "filename": record.inputs.get("filename", "")}
        return Restored(inputs, user_params(record, self.stops))

