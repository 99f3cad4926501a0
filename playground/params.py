"""Generation parameters: each one declared once, validated once at the edge.

A parameter is a field of ``GenerationParams`` whose ``declare(...)`` metadata
holds everything about it: default, bound, help, how untrusted input is
parsed, the UI control that shows it, and how engines treat it. ``PARAMS``
lists those declarations; the REST validation, ``GET /api/params``, the
Gradio panel and its handlers all read them, and each backend keeps one table
from these names to its own wire names. Adding a sampling knob is one field
here plus one row in each backend's table.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from playground.errors import InvalidParameterError, quoted
from playground.prompting import loops

_WHOLE = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: "²" is a digit to str.isdigit, not to int()
_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?")
MIN_SAMPLING_TEMPERATURE = 0.01  # below this the samplers overflow; 0 itself means greedy

MAX_STOP_SEQUENCES = 8
MAX_STOP_LENGTH = 64
MAX_SEED = 2**32 - 1

# How a UI shows a parameter: a slider within its bound, a box of lines, a seed box (empty: random),
# a toggle that asks for the bound's maximum when on, or a checkbox for a yes/no.
Control = Literal["slider", "lines", "seed", "toggle", "checkbox"]
# How engines treat it: a sampling knob is sent only while sampling; an "always" knob whenever it is
# not at its neutral value; None: the app itself acts on it (budget, stops, seeds, probabilities).
Knob = Literal["sampling", "always"] | None


@dataclass(frozen=True)
class Bound:
    minimum: float
    maximum: float
    step: float


@dataclass(frozen=True)
class Param:
    """Everything about one parameter; ``name`` is filled in from its field."""

    default: Any
    help: str
    parse: Callable[[str, Any], Any]  # (name, untrusted value) -> value; raises InvalidParameterError
    bound: Bound | None = None
    control: Control = "slider"
    label: str | None = None  # the UI's label (None: the name)
    ui_name: str | None = None  # the name the Gradio API gives it (None: the name)
    knob: Knob = None
    neutral: Any = None  # a knob at this value is left off the request
    candidates: bool = False  # asks for several candidates: offered only where a mode gives them
    own: bool = False  # one mode's own setting: offered only by the modes that list it (``Mode.own_params``)
    before: Any = None  # for a record made before this parameter existed: the value that behaves as it did
    name: str = ""

    @property
    def api_name(self) -> str:
        return self.ui_name or self.name

    def to_json(self) -> dict[str, Any]:
        """What ``GET /api/params`` says of a bounded parameter."""
        assert self.bound is not None
        return {"minimum": self.bound.minimum, "maximum": self.bound.maximum, "step": self.bound.step,
                "help": self.help}


def declare(default: Any, help: str, parse: Callable[[str, Any], Any], **facts: Any) -> Any:
    """A ``GenerationParams`` field carrying its declaration."""
    return field(default=default, metadata={"param": Param(default, help, parse, **facts)})


# -- parsers of untrusted values (JSON or UI), one per kind of parameter --------------------------


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _bounded(name: str, value: float) -> Any:
    param = PARAMS[name]
    assert param.bound is not None
    bound = param.bound
    if not bound.minimum <= value <= bound.maximum:
        raise InvalidParameterError(f"{name} must be between {_fmt(bound.minimum)} and {_fmt(bound.maximum)}, "
                                    f"got {quoted(value)}. {param.help}")
    return value


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be a whole number, not {value!r}.")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value)
    raise InvalidParameterError(f"{name} must be a whole number, not {quoted(value)}.")


def as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be a number, not {value!r}.")
    if isinstance(value, str) and not _NUMBER.fullmatch(value.strip()):
        raise InvalidParameterError(f"{name} must be a number, not {quoted(value)}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(f"{name} must be a number, not {quoted(value)}.") from None
    if not math.isfinite(number):
        raise InvalidParameterError(f"{name} must be a finite number.")
    return number


def bounded_int(name: str, value: Any) -> int:
    return int(_bounded(name, as_int(name, value)))


def bounded_float(name: str, value: Any) -> float:
    return float(_bounded(name, as_float(name, value)))


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) or (isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1")):
        return str(value).strip().lower() in ("1", "true")
    raise InvalidParameterError(f"{name} must be true or false, not {quoted(value)}.")


def parse_seed(name: str, value: Any) -> int | None:
    if value is None or value == "" or value == -1:
        return None
    seed = as_int(name, value)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidParameterError(f"{name} must be between 0 and {MAX_SEED}, or empty for a random one.")
    return seed


def parse_stop(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise InvalidParameterError(f"{name} must be a list of strings.")
    stops = tuple(dict.fromkeys(s for s in value if s))  # drop empties and duplicates, keep order
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidParameterError(f"At most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(stops)}.")
    for stop in stops:
        if len(stop) > MAX_STOP_LENGTH:
            raise InvalidParameterError(f"Each stop sequence can be at most {MAX_STOP_LENGTH} characters long.")
        if any("\ud800" <= char <= "\udfff" for char in stop):
            raise InvalidParameterError("A stop sequence contains broken Unicode (a lone surrogate). Retype it.")
    return stops


# -- the parameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = declare(
        256, "Most tokens to generate. The model's context caps it further.", bounded_int, bound=Bound(1, 2048, 1))
    temperature: float = declare(
        0.2, "Randomness. 0 means greedy: the same prompt always gives the same text.", bounded_float,
        bound=Bound(0.0, 2.0, 0.05), knob="sampling")
    top_p: float = declare(
        0.9, "Nucleus sampling: keep the smallest set of tokens whose probability sums to this.", bounded_float,
        bound=Bound(0.01, 1.0, 0.01), knob="sampling", neutral=1.0)
    top_k: int = declare(
        0, "Keep only the k most likely tokens. 0 turns it off.", bounded_int, bound=Bound(0, 200, 1),
        knob="sampling", neutral=0)
    repetition_penalty: float = declare(
        1.2, "Above 1 discourages repeating earlier tokens.", bounded_float, bound=Bound(1.0, 2.0, 0.01),
        knob="always", neutral=1.0)
    stop: tuple[str, ...] = declare(
        (), f"Stop sequences (one per line, up to {MAX_STOP_SEQUENCES}; \\n for a newline)", parse_stop,
        control="lines")
    seed: int | None = declare(
        None, "Seed (empty: random; the one used is shown after each run)", parse_seed, control="seed")
    logprobs: int = declare(
        0, "Alternatives to record for each generated token, with their probabilities. 0 records none.",
        bounded_int, bound=Bound(0, 5, 1), control="toggle", ui_name="probabilities",
        label="Show probabilities: colour each token by how likely the model found it, with its alternatives")
    n: int = declare(
        1, "Candidates to generate for fill and complete, ranked by mean token log-probability.", bounded_int,
        bound=Bound(1, 8, 1), ui_name="candidates", label="Candidates (fill and complete)", candidates=True)
    heal: bool = declare(
        True, "Token healing: the prompt's last token is taken back and the model must write its text again first, "
        "spelled as it likes, so a prompt that ends after a newline or indentation goes on as code would. "
        "Remote engines that can constrain their output (TGI, vLLM, llama.cpp) are asked to; others get the "
        "prompt as typed, and the record says so.", as_bool, control="checkbox",
        label="Token healing", before=False)
    end_at_scope: bool = declare(
        True, "Fill: end the middle where the model's code leaves the hole's block (a line indented less than the "
        "hole) or starts repeating the code after the hole, instead of running on to the token limit.", as_bool,
        control="checkbox", label="End fills at the hole's scope", before=False, own=True)
    no_empty_fill: bool = declare(
        True, "Fill: the model may not close the hole before it writes something visible (an empty middle is "
        "never what marking a hole asks for). The app's own engine applies it; remote engines cannot be asked, "
        "and an empty fill from them is shown as such.", as_bool, control="checkbox",
        label="Never return an empty fill", before=False, own=True)
    stop_loops: bool = declare(
        True, "Stop the model where it writes the same text over and over (a piece of up to "
        f"{loops.MAX_UNIT} characters with a letter in it, back to back at least {loops.MIN_COPIES} times and "
        f"over {loops.MIN_CHARS} characters; digits alone, over {loops.MIN_DIGIT_CHARS}); what it wrote keeps "
        "the first two copies.", as_bool, control="checkbox", label="Stop at loops", before=False)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def wants_logprobs(self) -> bool:
        """Token log-probabilities are needed: shown (logprobs > 0) or to rank candidates (n > 1)."""
        return self.logprobs > 0 or self.n > 1

    def with_seed(self) -> GenerationParams:
        """A copy with a concrete seed, so the generation can be replayed exactly."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(MAX_SEED + 1))

    def knobs(self) -> dict[str, Any]:
        """The engine-side sampling settings that are on, by parameter name: what a backend's table
        spells in its own terms. Greedy decoding sends no sampling knob at all."""
        out = {}
        for param in PARAMS.values():
            value = getattr(self, param.name)
            if param.knob is None or (param.knob == "sampling" and self.greedy) or value == param.neutral:
                continue
            out[param.name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self._values().items()}

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PARAMS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationParams:
        """A stored record's parameters, trusted (they were validated when it was made)."""
        values = {name: data[name] for name in PARAMS if name in data}
        values.update({name: p.before for name, p in PARAMS.items() if name not in data and p.before is not None})
        if "stop" in values:
            values["stop"] = tuple(values["stop"])
        return cls(**values)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, defaults: GenerationParams | None = None) -> GenerationParams:
        """Validate untrusted input (JSON, UI values) on top of ``defaults``.

        Raises InvalidParameterError naming the field and the allowed range.
        """
        raw = dict(raw or {})
        unknown = set(raw) - set(PARAMS)
        if unknown:
            raise InvalidParameterError(f"Unknown parameter(s): {', '.join(sorted(quoted(u) for u in unknown))}. "
                                        f"Allowed: {', '.join(PARAMS)}.")
        values = (defaults or cls())._values()
        for name, value in raw.items():
            # null leaves the default, except for the seed, where it asks for a random one
            if value is not None or PARAMS[name].control == "seed":
                values[name] = PARAMS[name].parse(name, value)
        if 0 < values["temperature"] < MIN_SAMPLING_TEMPERATURE:
            raise InvalidParameterError(
                f"temperature must be 0 (greedy) or at least {MIN_SAMPLING_TEMPERATURE}; smaller values overflow "
                "the sampler. Use 0 for the most likely text.")
        return cls(**values)


def _declared() -> dict[str, Param]:
    return {f.name: replace(f.metadata["param"], name=f.name) for f in fields(GenerationParams)}


PARAMS: Mapping[str, Param] = _declared()


# -- UI values ----------------------------------------------------------------------------------


def ui_value(param: Param, value: Any) -> Any:
    """A parameter's value as its control shows it."""
    if param.control == "lines":
        return "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in value)
    if param.control == "seed":
        return "" if value is None else str(value)
    if param.control in ("toggle", "checkbox"):
        return bool(value)
    return value


def from_ui(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """Control values, matched against the panel's parameter names, as raw parameters that
    ``GenerationParams.parse`` validates. A toggle that is on asks for its bound's maximum."""
    raw: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        param = PARAMS[name]
        if param.control == "lines":
            raw[name] = [line.replace("\\n", "\n").replace("\\t", "\t") for line in (value or "").splitlines() if line]
        elif param.control == "seed":
            raw[name] = ("" if value is None else str(value).strip()) or None
        elif param.control == "toggle":
            assert param.bound is not None
            raw[name] = int(param.bound.maximum) if value else 0
        elif param.control == "checkbox":
            raw[name] = bool(value)
        else:
            raw[name] = value
    return raw
