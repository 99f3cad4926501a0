"""Model facts as data: ModelSpec entries read from ``models/*.toml``.

FIM spellings, stop tokens, context length, defaults and licence live here,
never in ``if "starcoder2" in name`` branches. A model without an entry (a
local folder or an arbitrary hub id) gets a spec inferred from its own
config and tokenizer files by ``playground.loading``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from playground.errors import ConfigError, InvalidParameterError, UnknownModelError
from playground.params import GenerationParams

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class FimTokens:
    prefix: str
    middle: str
    suffix: str
    pad: str | None = None
    # "psm": prefix, suffix, then the middle (what StarCoder's card shows). "spm": suffix first, so the
    # middle continues its prefix directly; StarCoder trained on both, and tiny models fill far better so.
    order: Literal["psm", "spm"] = "psm"

    @classmethod
    def starcoder(cls) -> FimTokens:
        return cls("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")

    @classmethod
    def santacoder(cls) -> FimTokens:
        return cls("<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>")

    def all(self) -> tuple[str, ...]:
        return tuple(t for t in (self.prefix, self.middle, self.suffix, self.pad) if t)


RepoFormat = Literal["starcoder", "starcoder2", "comments"]
# The metadata tokens each repository format spells files with (besides the filename token).
REPO_TOKENS: dict[RepoFormat, tuple[str, ...]] = {
    "starcoder": ("<reponame>",), "starcoder2": ("<repo_name>", "<file_sep>"), "comments": ()}


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
    # The tab the page opens on for this model: a model too small for the Tech Assistant dialogues opens on
    # a mode it serves well (nano-starcoder: "complete"). None: the first mode's.
    opens_on: str | None = None

    @property
    def repo_format(self) -> RepoFormat:
        """How the model was shown a repository's other files: StarCoder's metadata tokens (one file per
        document), StarCoder2's file separators (a whole repository per document), or, for a model trained
        with neither, nothing of its own (the files go in as comments)."""
        if "<file_sep>" in self.stop_tokens:
            return "starcoder2"
        return "starcoder" if self.filename_token else "comments"

    def special_tokens(self) -> frozenset[str]:
        tokens = {self.end_of_text, *self.stop_tokens, *REPO_TOKENS[self.repo_format]}
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
        fim_order = table.pop("fim_order", "psm")
        defaults = GenerationParams.parse(table.pop("defaults", {}))
        if fim_order not in ("psm", "spm"):
            raise ValueError(f"fim_order must be \"psm\" or \"spm\", not {fim_order!r}")
        if fim_order != "psm" and not fim_style:
            raise ValueError("fim_order needs fim_style: a model without FIM tokens has no fill prompt to order")
        fim = replace(_FIM_STYLES[fim_style](), order=fim_order) if fim_style else None
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
    """Match a registry id, the hub id an entry points at (``bigcode/starcoder``), or its folder."""
    if name in registry:
        return registry[name]
    folder = str(Path(name).expanduser().resolve()) if Path(name).expanduser().is_dir() else None
    for spec in registry.values():
        if spec.source == name or (folder is not None and spec.resolved_source() == folder):
            return spec
    return None


def infer_spec(name: str, source: str, context: int, vocab: Collection[str], eos_token: str | None) -> ModelSpec:
    """A spec for a model with no registry entry, from its context length and tokenizer vocabulary."""
    fim = None
    if "<fim_prefix>" in vocab:
        fim = FimTokens.starcoder()
    elif "<fim-prefix>" in vocab:
        fim = FimTokens.santacoder()
    return ModelSpec(
        id=name,
        source=source,
        context_length=context,
        end_of_text=eos_token or "<|endoftext|>",
        fim=fim,
        stop_tokens=tuple(t for t in ("<file_sep>",) if t in vocab),
        filename_token="<filename>" if "<filename>" in vocab and "<file_sep>" not in vocab else None,
        description=f"{name}: no registry entry; tokens and context read from its files.",
    )


def spec_from_folder(name: str, folder: Path) -> ModelSpec | None:
    """``infer_spec`` from a model folder's config.json and tokenizer.json, read as JSON (no torch);
    None when the folder lacks them."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    context = int(config.get("n_positions") or config.get("max_position_embeddings") or 2048)
    vocab = set(tokenizer.get("model", {}).get("vocab", {}))
    vocab |= {t["content"] for t in tokenizer.get("added_tokens", []) if isinstance(t, dict) and "content" in t}
    eos = None
    try:
        eos = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("eos_token")
    except (OSError, ValueError):
        pass
    return infer_spec(name, str(folder), context, vocab, eos if isinstance(eos, str) else None)



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
