"""Generation parameters: one typed object, validated once at the edge.

``BOUNDS`` is the single source of the limits and help texts; the UI sliders
and the REST validation both read it, so they cannot disagree.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from playground.errors import InvalidParameterError

_WHOLE = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: "²" is a digit to str.isdigit, not to int()
_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?")
MIN_SAMPLING_TEMPERATURE = 0.01  # below this the samplers overflow; 0 itself means greedy

MAX_STOP_SEQUENCES = 8
MAX_STOP_LENGTH = 64
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Bound:
    minimum: float
    maximum: float
    step: float
    help: str


BOUNDS: dict[str, Bound] = {
    "max_new_tokens": Bound(1, 2048, 1, "Most tokens to generate. The model's context caps it further."),
    "temperature": Bound(0.0, 2.0, 0.05, "Randomness. 0 means greedy: the same prompt always gives the same text."),
    "top_p": Bound(0.01, 1.0, 0.01,
                   "Nucleus sampling: keep the smallest set of tokens whose probability sums to this."),
    "top_k": Bound(0, 200, 1, "Keep only the k most likely tokens. 0 turns it off."),
    "repetition_penalty": Bound(1.0, 2.0, 0.01, "Above 1 discourages repeating earlier tokens."),
    "logprobs": Bound(0, 5, 1, "Alternatives to record for each generated token, with their probabilities. "
                               "0 records none."),
    "n": Bound(1, 8, 1, "Candidates to generate for fill and complete, ranked by mean token log-probability."),
}
_NAMES = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "logprobs", "n", "seed", "stop")


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.2
    seed: int | None = None  # None: a random seed is drawn and recorded
    stop: tuple[str, ...] = field(default_factory=tuple)
    logprobs: int = 0  # alternatives per token (0-5); the chosen token's own log-probability comes with 1+
    n: int = 1  # candidates (fill and complete)

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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, defaults: GenerationParams | None = None) -> GenerationParams:
        """Validate untrusted input (JSON, UI values) on top of ``defaults``.

        Raises InvalidParameterError naming the field and the allowed range.
        """
        defaults = defaults or cls()
        raw = dict(raw or {})
        unknown = set(raw) - set(_NAMES)
        if unknown:
            raise InvalidParameterError(
                f"Unknown parameter(s): {', '.join(sorted(_shown(u) for u in unknown))}. Allowed: {', '.join(_NAMES)}."
            )
        values = defaults.to_dict()
        for name in ("max_new_tokens", "top_k", "logprobs", "n"):
            if raw.get(name) is not None:
                values[name] = _bounded(name, _as_int(name, raw[name]))
        for name in ("temperature", "top_p", "repetition_penalty"):
            if raw.get(name) is not None:
                values[name] = _bounded(name, _as_float(name, raw[name]))
        if "seed" in raw:
            values["seed"] = _parse_seed(raw["seed"])
        if "stop" in raw and raw["stop"] is not None:
            values["stop"] = _parse_stop(raw["stop"])
        values["stop"] = tuple(values["stop"])
        if 0 < values["temperature"] < MIN_SAMPLING_TEMPERATURE:
            raise InvalidParameterError(
                f"temperature must be 0 (greedy) or at least {MIN_SAMPLING_TEMPERATURE}; smaller values overflow "
                "the sampler. Use 0 for the most likely text."
            )
        return cls(**values)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be a whole number, not {value!r}.")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value)
    raise InvalidParameterError(f"{name} must be a whole number, not {_shown(value)}.")


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be a number, not {value!r}.")
    if isinstance(value, str) and not _NUMBER.fullmatch(value.strip()):
        raise InvalidParameterError(f"{name} must be a number, not {_shown(value)}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(f"{name} must be a number, not {_shown(value)}.") from None
    if not math.isfinite(number):
        raise InvalidParameterError(f"{name} must be a finite number.")
    return number


def _bounded(name: str, value: float) -> Any:
    bound = BOUNDS[name]
    if not bound.minimum <= value <= bound.maximum:
        raise InvalidParameterError(
            f"{name} must be between {_fmt(bound.minimum)} and {_fmt(bound.maximum)}, got {_fmt(value)}. {bound.help}"
        )
    return value


def _shown(value: Any) -> str:
    """A value as an error message may show it: short, ASCII-safe (no lone surrogates can leak out)."""
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _parse_seed(value: Any) -> int | None:
    if value is None or value == "" or value == -1:
        return None
    seed = _as_int("seed", value)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidParameterError(f"seed must be between 0 and {MAX_SEED}, or empty for a random one.")
    return seed


def _parse_stop(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise InvalidParameterError("stop must be a list of strings.")
    stops = tuple(dict.fromkeys(s for s in value if s))  # drop empties and duplicates, keep order
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidParameterError(f"At most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(stops)}.")
    for stop in stops:
        if len(stop) > MAX_STOP_LENGTH:
            raise InvalidParameterError(f"Each stop sequence can be at most {MAX_STOP_LENGTH} characters long.")
        if any("\ud800" <= char <= "\udfff" for char in stop):
            raise InvalidParameterError("A stop sequence contains broken Unicode (a lone surrogate). Retype it.")
    return stops
