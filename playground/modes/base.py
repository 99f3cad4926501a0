"""What every mode offers: its inputs, a prompt built from them, raw output presented, a share restored.

A mode owns its shape. It declares its inputs as a pydantic model (the REST
body documents and validates them, and the Gradio endpoint takes them first,
by the same names), keeps its own prepared state (``Prepared.state``: fill's
hole, chat's context breakdown), and says which part of what the user sees
the model wrote (``Shown.generated``). Nothing outside this package names a
mode's own fields; the service, the record and the candidates work from
``Shown`` alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from playground.errors import InputError
from playground.params import GenerationParams
from playground.prompting.budget import Budget, TokenCounter
from playground.prompting.prepared import Prepared
from playground.record import Generation, Shown
from playground.registry import ModelSpec

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Any, message: str | None = None,
              error: type[InputError] = InputError) -> Model:
    """``data`` as ``model``; an ``error`` naming the first field at fault (never echoing its value),
    or saying ``message`` when given."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if message is not None:
            raise error(message) from None
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])[:40] or "The body"
        raise error(f"{where}: {first['msg']}. The request bodies are described at /api/docs.") from None


class ModeInputs(BaseModel):
    """A mode's inputs as clients send them; ``to_inputs`` gives what ``Mode.build`` reads."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Untrusted inputs (a REST body, a Gradio call), checked against this model."""
        return validated(cls, raw).to_inputs()

    def to_inputs(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class ModeContext:
    """What a mode may read while building: the model's facts and the token budget."""

    spec: ModelSpec
    budget: Budget
    count: TokenCounter
    params: GenerationParams = GenerationParams()  # validated: a mode may read its own settings


@dataclass(frozen=True)
class Restored:
    """A shared generation, as its tab shows it again."""

    inputs: dict[str, Any]  # the mode's inputs by name, as the tab's editors take them
    params: GenerationParams  # as the user chose them: the stop sequences without the mode's own


class Mode(Protocol):
    name: ClassVar[str]
    stops: tuple[str, ...]  # stop sequences the mode always adds
    candidates: ClassVar[bool]  # whether it offers several candidates (params.n > 1)
    own_params: ClassVar[tuple[str, ...]]  # parameters that are its own (``Param.own``): fill's end_at_scope
    inputs: ClassVar[type[ModeInputs]]  # what a client sends, by field
    # The field of the record's JSON that holds the generated part, where it is not the whole text.
    generated_field: ClassVar[str | None]

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[Any]:
        """Validate the inputs and build a prompt that fits ``ctx.budget``; raises InputError subclasses."""
        ...

    def present(self, prepared: Prepared[Any], raw: str) -> Shown:
        """The raw generated text so far, as the user sees it."""
        ...

    def offset(self, raw: str) -> int:
        """Where the generated part (what ``deltas`` join into) begins in the raw text: it is always
        ``raw[offset:offset + len(part)]``, so the tokens behind it can be found."""
        ...

    def ended(self, prepared: Prepared[Any], raw: str) -> str | None:
        """A note for the record when the mode's own rule has ended the raw text early (a fill that
        left its hole's block), so the model can stop; None while it has not."""
        ...

    def deltas(self, prepared: Prepared[Any], raw: Iterator[str]) -> Iterator[str]:
        """The streamed deltas a client receives: joined, they equal ``present(...).generated``."""
        ...

    def restore(self, record: Generation) -> Restored:
        """What the tab shows when ``record`` is opened from a share link."""
        ...


def user_params(record: Generation, mode_stops: tuple[str, ...]) -> GenerationParams:
    """The parameters a user chose: the recorded ones, less the stops the mode adds by itself."""
    return replace(record.params, stop=tuple(s for s in record.params.stop if s not in mode_stops))
