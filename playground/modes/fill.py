"""Fill in the middle: code with one ``<FILL_HERE>`` hole; the middle is spliced back in.

The record lists the generated middle apart from the whole code, as ``middle``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import Field

from playground.modes.base import ModeContext, ModeInputs, Restored, user_params
from playground.prompting.fill import FILL_MARKER, build_fill, echo_start, strip_suffix_echo
from playground.prompting.prepared import Prepared
from playground.record import Generation, Shown

Hole = tuple[str, str]  # the user's code before and after the hole


class FillInputs(ModeInputs):
    code: str = Field(description=f"The code, with exactly one {FILL_MARKER} where the model should write.")
    filename: str | None = Field("", description="The file's path, given to models that take it as metadata.")


class FillMode:
    name: ClassVar[str] = "fill"
    stops: tuple[str, ...] = ()
    candidates: ClassVar[bool] = True
    inputs: ClassVar[type[ModeInputs]] = FillInputs
    generated_field: ClassVar[str | None] = "middle"

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[Hole]:
        return build_fill(inputs.get("code", ""), inputs.get("filename") or "", ctx.spec, ctx.budget, ctx.count)

    def present(self, prepared: Prepared[Hole], raw: str) -> Shown:
        prefix, suffix = prepared.state
        middle = strip_suffix_echo(raw, suffix)
        return Shown(prefix + middle + suffix, middle, {"middle": middle})

    def offset(self, raw: str) -> int:
        return 0  # the middle is a prefix of the raw text

    def deltas(self, prepared: Prepared[Hole], raw: Iterator[str]) -> Iterator[str]:
        """The middle as it settles: text that could still turn out to repeat the code after the hole
        is held back until it cannot, and nothing past a repeat is sent, so the deltas join into the
        record's ``middle`` exactly."""
        suffix = prepared.state[1]
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
        return Restored(inputs, user_params(record, self.stops))


def _settled(text: str, suffix: str) -> tuple[str, bool]:
    """(the part of a growing middle that can be shown now, whether a repeat of the suffix ended it);
    text that may still grow into a repeat is held back."""
    found = echo_start(text, suffix)
    return (text, False) if found is None else (text[: found[0]], found[1])
