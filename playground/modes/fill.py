"""Fill in the middle: code with one ``<FILL_HERE>`` hole; the middle is spliced back in.

The record lists the generated middle apart from the whole code, as ``middle``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, replace
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from playground.errors import InputError
from playground.modes.base import ModeContext, ModeInputs, Restored, user_params
from playground.prompting.budget import check_text
from playground.prompting.fill import FILL_MARKER, fill_around, split_hole
from playground.prompting.fill_end import Hole, ended_note, middle_end, settled_middle
from playground.prompting.prepared import Prepared
from playground.prompting.repo_context import MAX_FILES, ContextFile, RepoContext
from playground.record import Generation, Shown


class ContextFileInput(BaseModel):
    filename: str = Field(description="The file's path in the repository, e.g. src/utils.py.")
    text: str = Field(description="The file's text, or the part of it that matters.")


class FillInputs(ModeInputs):
    code: str | None = Field(None, description=f"The code, with exactly one {FILL_MARKER} where the model should "
                             "write. Or send prefix and suffix instead.")
    prefix: str | None = Field(None, description="The code before the hole (instead of code).")
    suffix: str | None = Field(None, description="The code after the hole (instead of code).")
    filename: str | None = Field("", description="The file's path, given to models that take it as metadata.")
    repo_name: str | None = Field("", description="The repository's name, for models trained with it.")
    context: list[ContextFileInput] | None = Field(
        None, description=f"Other files of the repository, most relevant first (at most {MAX_FILES}); they fill "
        "what the code around the hole leaves of the prompt, and the record's budget says what was kept.")


class FillMode:
    name: ClassVar[str] = "fill"
    stops: tuple[str, ...] = ()
    candidates: ClassVar[bool] = True
    own_params: ClassVar[tuple[str, ...]] = ("end_at_scope", "no_empty_fill")
    inputs: ClassVar[type[ModeInputs]] = FillInputs
    generated_field: ClassVar[str | None] = "middle"

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[Hole]:
        prefix, suffix = _around(inputs)
        filename = inputs.get("filename") or ""
        files = [ContextFile(f["filename"], f["text"]) for f in inputs.get("context") or ()]
        context = RepoContext.checked(inputs.get("repo_name") or "", files)
        prepared = fill_around(prefix, suffix, filename, ctx.spec, ctx.budget, ctx.count,
                               end_at_scope=ctx.params.end_at_scope, context=context)
        # Recorded as sent: a share reopens the code and its context exactly.
        recorded = {key: inputs[key] for key in ("code", "prefix", "suffix") if inputs.get(key) is not None}
        recorded["filename"] = filename
        if context:
            recorded.update(repo_name=context.repo_name, context=[asdict(f) for f in context.files])
        return replace(prepared, inputs=recorded)

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
        given = record.inputs
        code = given["code"] if "code" in given else given["prefix"] + FILL_MARKER + given["suffix"]
        inputs = {"code": code, "filename": given.get("filename", "")}
        inputs.update({key: given[key] for key in ("repo_name", "context") if key in given})
        return Restored(inputs, user_params(record, self.stops))


def _around(inputs: Mapping[str, Any]) -> tuple[str, str]:
    """The code before and after the hole: from ``code`` and its marker, or as sent."""
    code, prefix, suffix = inputs.get("code"), inputs.get("prefix"), inputs.get("suffix")
    if code is not None and (prefix is not None or suffix is not None):
        raise InputError(f"Send either code (with one {FILL_MARKER}) or prefix and suffix, not both.")
    if code is not None:
        check_text("The code", code)
        return split_hole(code)
    if prefix is None:
        raise InputError(f"Send the code with one {FILL_MARKER} where the model should write "
                         "(or the code before the hole as prefix, and after it as suffix).")
    return prefix, suffix or ""

