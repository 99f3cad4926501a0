"""Model facts as data: ModelSpec entries read from ``models/*.toml``.

FIM spellings, stop tokens, context length, defaults and licence live here,
never in ``if "starcoder2" in name`` branches. A model without an entry (a
local folder or an arbitrary hub id) gets a spec inferred from its own
config and tokenizer files by ``playground.loading``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import ConfigError, InvalidParameterError, UnknownModelError
from playground.params import GenerationParams

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class FimTokens:
    prefix: str
    middle: str
    suffix: str
    pad: str | None = None

    @classmethod
    def starcoder(cls) -> FimTokens:
        return cls("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")

    @classmethod
    def santacoder(cls) -> FimTokens:
        return cls("<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>")

    def all(self) -> tuple[str, ...]:
        return tuple(t for t in (self.prefix, self.middle, self.suffix, self.pad) if t)


@dataclass(frozen=True)
class PublishedScore:
    """A score from the model's card or paper, for checking a deployment against it."""

    humaneval_pass_at_1: float  # HumanEval (Python), as a fraction
    source: str  # where the figure is published
    approximate: bool = False  # rounded or read off a chart: compare loosely


_FIM_STYLES = {"starcoder": FimTokens.starcoder, "santacoder": FimTokens.santacoder}


@dataclass(frozen=True)
class ModelSpec:
    id: str  # short name users pick, e.g. "starcoder"
    source: str  # hub id ("bigcode/starcoder") or a folder path
    context_length: int
    end_of_text: str = "<|endoftext|>"
    fim: FimTokens | None = None
    stop_tokens: tuple[str, ...] = ()  # special tokens that end a generation besides end_of_text
    filename_token: str | None = None  # StarCoder's "<filename>" metadata token, when trained with it
    defaults: GenerationParams = field(default_factory=GenerationParams)
    license: str = "unknown"
    license_url: str | None = None
    gated: bool = False
    revision: str | None = None
    parameters_billion: float | None = None
    chars_per_token: float = 3.2  # budget estimate where the tokenizer is not at hand (remote engines)
    description: str = ""
    card: PublishedScore | None = None  # the published HumanEval figure, where there is one

    def special_tokens(self) -> frozenset[str]:
        tokens = {self.end_of_text, *self.stop_tokens}
        if self.fim:
            tokens.update(self.fim.all())
        if self.filename_token:
            tokens.add(self.filename_token)
        return frozenset(tokens)

    def resolved_source(self, models_dir: Path = MODELS_DIR) -> str:
        """Hub ids stay as they are; relative folders are resolved against ``models/``'s parent."""
        if self.source.startswith("./") or self.source.startswith("models/"):
            return str((models_dir.parent / self.source).resolve())
        return self.source


def _spec_from_table(path: Path, table: dict[str, Any]) -> ModelSpec:
    try:
        fim_style = table.pop("fim_style", None)
        defaults = GenerationParams.parse(table.pop("defaults", {}))
        fim = _FIM_STYLES[fim_style]() if fim_style else None
        stop_tokens = tuple(table.pop("stop_tokens", ()))
        card = PublishedScore(**table.pop("card")) if "card" in table else None
        return ModelSpec(fim=fim, defaults=defaults, stop_tokens=stop_tokens, card=card, **table)
    except (TypeError, KeyError, ValueError, InvalidParameterError) as exc:
        raise ConfigError(f"Model registry file {path.name} is invalid: {exc}. Fix the file or remove it.") from exc


def load_registry(models_dir: Path = MODELS_DIR) -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for path in sorted(models_dir.glob("*.toml")):
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Model registry file {path.name} is not valid TOML: {exc}.") from exc
        spec = _spec_from_table(path, table)
        if spec.id in specs:
            raise ConfigError(f"Model id {spec.id!r} is defined twice in {models_dir}.")
        if spec.context_length <= 0:
            raise ConfigError(f"{path.name}: context_length must be positive.")
        specs[spec.id] = spec
    return specs


def find_spec(registry: dict[str, ModelSpec], name: str) -> ModelSpec | None:
    """Match a registry id, or the hub id an entry points at (``bigcode/starcoder``)."""
    if name in registry:
        return registry[name]
    for spec in registry.values():
        if spec.source == name:
            return spec
    return None



_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def resolve_source(name: str, registry: dict[str, ModelSpec]) -> tuple[ModelSpec | None, str]:
    """(registry spec or None, what to pass to ``from_pretrained``): an entry, a folder or a hub id."""
    spec = find_spec(registry, name)
    if spec is not None:
        return spec, spec.resolved_source()
    if Path(name).expanduser().is_dir():
        return None, str(Path(name).expanduser().resolve())
    if _HUB_ID.match(name) and not Path(name).exists():
        return None, name
    raise UnknownModelError(
        f"Unknown model {name!r}: it is not a registry id ({', '.join(sorted(registry))}), "
        "not an existing folder, and not a hub id like bigcode/starcoder."
    )
