"""One frozen Settings object, built from ``PLAYGROUND_*`` env vars and CLI flags.

This is the only module that reads ``os.environ``. Flags win over env vars,
env vars win over the defaults below. Everything else receives Settings
explicitly.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from playground.errors import ConfigError

BACKENDS = ("local", "tgi", "openai", "fake")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("none", "8bit", "4bit")
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    model: str = "nano-starcoder"  # registry id, hub id or local folder
    revision: str | None = None  # hub branch, tag or commit
    backend: str = "local"  # local | tgi | openai | fake
    endpoint: str | None = None  # remote engine base URL
    extra_models: tuple[str, ...] = ()  # more remote models for the selector: "id=tgi:URL", "id=openai:URL"
    endpoint_token: str | None = field(default=None, repr=False)  # bearer token; repr=False keeps it out of logs
    hf_token: str | None = field(default=None, repr=False)  # for gated hub repos (HF_TOKEN)
    dtype: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device_map: str | None = None  # auto | balanced | sequential | JSON mapping; None: one device
    max_memory: Mapping[str, str] | None = None  # {"0": "20GiB", "cpu": "64GiB"}
    quantize: str = "none"  # none | 8bit | 4bit (bitsandbytes, CUDA only)
    data_dir: Path = Path("data")
    database_url: str | None = None  # any SQLAlchemy URL; default: SQLite under data_dir
    public_url: str | None = None  # absolute base for share links
    chat_prompt: Path | None = None  # a Tech Assistant prompt file to use instead of ours
    generation_timeout_s: float = 120.0  # wall-clock cap on one generation
    first_token_timeout_s: float = 60.0  # remote engines: wait for the first token
    idle_timeout_s: float = 30.0  # remote engines: longest gap between tokens
    remote_concurrency: int = 16  # simultaneous generations on a remote engine
    max_queue: int = 64  # waiting requests beyond this get "busy"
    share_create_per_minute: int = 60  # per client; 0 turns the limit off
    share_lookup_per_minute: int = 300
    generate_per_minute: int = 120  # generations per client; 0 turns the limit off
    # Who the client is, for the limits: "ignore" X-Forwarded-For (use the connection's peer),
    # its "first" entry (a Space's default: forgeable, but never pools users), or "N", the N-th
    # entry from the right behind N proxies you run (forgery-proof).
    forwarded_for: str = "ignore"
    log_prompts: bool = False  # put prompt text in the generation log (off: it may hold secrets)
    log_level: str = "INFO"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'playground.db').resolve()}"


# name -> (env var, parser). Flags are derived from the same table.
def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}.") from None


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}.") from None


def _choice(choices: tuple[str, ...]):
    def parse(name: str, text: str) -> str:
        if text not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {text!r}.")
        return text

    return parse


def _bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}.")


def _text(name: str, text: str) -> str | None:
    return text or None


def _forwarded_for(name: str, text: str) -> str:
    if text in ("ignore", "first") or re.fullmatch(r"[1-9][0-9]*", text):
        return text
    raise ConfigError(
        f"{name} must be ignore, first, or the number of proxies you run in front of the app (1 or more), "
        f"got {text!r}."
    )


def _path(name: str, text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def parse_device_map(name: str, text: str) -> str | None:
    """A strategy name, or a JSON object mapping module names to devices."""
    if not text:
        return None
    if text in DEVICE_MAP_STRATEGIES:
        return text
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
        raise ConfigError(
            f"{name} must be one of {', '.join(DEVICE_MAP_STRATEGIES)} or a JSON object such as "
            '\'{"transformer.wte": 0, "transformer.h.0": 0, "lm_head": "cpu"}\'; got ' + repr(text) + "."
        )
    return text


def parse_extra_models(name: str, text: str) -> tuple[str, ...]:
    """``starcoder2-15b=openai:http://vllm:8000/v1,starcoder=tgi:http://tgi:80`` → validated entries."""
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    for entry in entries:
        model, _, target = entry.partition("=")
        kind, _, url = target.partition(":")
        if not model or kind not in ("tgi", "openai") or not url.startswith(("//", "http")):
            raise ConfigError(
                f"{name} entries look like starcoder=tgi:http://host:8080 or starcoder2-15b=openai:http://host:8000/v1;"
                f" could not read {entry!r}."
            )
    return entries


def split_extra_model(entry: str) -> tuple[str, str, str]:
    """(model id, backend kind, endpoint URL) of one validated ``extra_models`` entry."""
    model, _, target = entry.partition("=")
    kind, _, url = target.partition(":")
    return model, kind, url


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*$", re.IGNORECASE)


def parse_max_memory(name: str, text: str) -> dict[str, str] | None:
    """``0=20GiB,1=20GiB,cpu=64GiB`` → ``{"0": "20GiB", "1": "20GiB", "cpu": "64GiB"}``."""
    if not text:
        return None
    budget: dict[str, str] = {}
    for part in text.split(","):
        device, _, amount = part.partition("=")
        device = device.strip()
        if not (device.isdigit() or device in ("cpu", "disk", "mps")) or not _MEMORY.match(amount):
            raise ConfigError(
                f"{name} entries look like 0=20GiB,1=20GiB,cpu=64GiB (a GPU index, cpu or disk, then a size "
                f"in KiB/MiB/GiB/TiB); could not read {part.strip()!r}."
            )
        budget[device] = amount.strip()
    return budget


_OPTIONS: dict[str, tuple[str, Any, str]] = {
    # field: (env var, parser, help)
    "host": ("PLAYGROUND_HOST", _text, "address to listen on (0.0.0.0 on a Space)"),
    "port": ("PLAYGROUND_PORT", _int, "port to listen on"),
    "model": ("PLAYGROUND_MODEL", _text, "registry id (see models/), hub id or local folder"),
    "revision": ("PLAYGROUND_REVISION", _text, "hub branch, tag or commit to load"),
    "backend": ("PLAYGROUND_BACKEND", _choice(BACKENDS), "where the model runs: " + ", ".join(BACKENDS)),
    "endpoint": ("PLAYGROUND_ENDPOINT", _text, "base URL of a TGI or OpenAI-compatible server"),
    "extra_models": ("PLAYGROUND_EXTRA_MODELS", parse_extra_models,
                     "more remote models, comma-separated ID=tgi:URL or ID=openai:URL"),
    "endpoint_token": ("PLAYGROUND_ENDPOINT_TOKEN", _text, "bearer token for --endpoint"),
    "hf_token": ("HF_TOKEN", _text, "Hugging Face token for gated models"),
    "dtype": ("PLAYGROUND_DTYPE", _choice(DTYPES), "weights dtype; auto = bf16 on CUDA, fp32 on CPU"),
    "device_map": ("PLAYGROUND_DEVICE_MAP", parse_device_map, "auto, balanced, sequential or a JSON mapping"),
    "max_memory": ("PLAYGROUND_MAX_MEMORY", parse_max_memory, "per-device budget, e.g. 0=20GiB,1=20GiB,cpu=64GiB"),
    "quantize": ("PLAYGROUND_QUANTIZE", _choice(QUANTIZATIONS), "load in 8bit or 4bit with bitsandbytes (CUDA)"),
    "data_dir": ("PLAYGROUND_DATA_DIR", _path, "where the share database lives"),
    "database_url": ("PLAYGROUND_DATABASE_URL", _text, "SQLAlchemy URL overriding the SQLite file"),
    "public_url": ("PLAYGROUND_PUBLIC_URL", _text, "absolute base URL for share links"),
    "chat_prompt": ("PLAYGROUND_CHAT_PROMPT", _path, "Tech Assistant prompt file to use instead of ours"),
    "generation_timeout_s": ("PLAYGROUND_GENERATION_TIMEOUT", _float, "wall-clock limit per generation (s)"),
    "first_token_timeout_s": ("PLAYGROUND_FIRST_TOKEN_TIMEOUT", _float, "remote: wait for the first token (s)"),
    "idle_timeout_s": ("PLAYGROUND_IDLE_TIMEOUT", _float, "remote: longest gap between tokens (s)"),
    "remote_concurrency": ("PLAYGROUND_REMOTE_CONCURRENCY", _int, "simultaneous generations on a remote engine"),
    "max_queue": ("PLAYGROUND_MAX_QUEUE", _int, "waiting requests before new ones are turned away"),
    "share_create_per_minute": ("PLAYGROUND_SHARE_CREATE_PER_MINUTE", _int, "share creations per client; 0 = off"),
    "share_lookup_per_minute": ("PLAYGROUND_SHARE_LOOKUP_PER_MINUTE", _int, "share lookups per client; 0 = off"),
    "generate_per_minute": ("PLAYGROUND_GENERATE_PER_MINUTE", _int, "generations per client; 0 = off"),
    "forwarded_for": ("PLAYGROUND_FORWARDED_FOR", _forwarded_for,
                      "client address for the limits: ignore X-Forwarded-For, its first entry, or N = the N-th "
                      "from the right behind N proxies you run (first on a Space)"),
    "log_prompts": ("PLAYGROUND_LOG_PROMPTS", _bool, "log prompt text with each generation (true/false)"),
    "log_level": ("PLAYGROUND_LOG_LEVEL", _text, "DEBUG, INFO, WARNING or ERROR"),
}


def _flag(name: str) -> str:
    return "--" + name.removesuffix("_s").replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="StarCoder Playground. Every flag also reads an env var, shown in brackets.",
    )
    for name, (env, _, help_text) in _OPTIONS.items():
        default = next(f.default for f in fields(Settings) if f.name == name)
        parser.add_argument(_flag(name), dest=name, default=None, help=f"{help_text} [{env}] (default: {default})")
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags over env vars over defaults. Raises ConfigError naming the bad flag or variable."""
    environ = environ if environ is not None else {}
    args = vars(build_parser().parse_args(list(argv or [])))
    values: dict[str, Any] = {}
    for name, (env, parse, _) in _OPTIONS.items():
        if args.get(name) is not None:
            values[name] = parse(_flag(name), args[name])
        elif environ.get(env):
            values[name] = parse(env, environ[env])
    if "host" not in values and environ.get("SPACE_ID"):
        values["host"] = "0.0.0.0"  # a Space routes traffic to the container, not to loopback
    if "forwarded_for" not in values and environ.get("SPACE_ID"):
        values["forwarded_for"] = "first"  # behind the Space's proxy every peer is the proxy itself
    if "public_url" not in values and environ.get("SPACE_HOST"):
        values["public_url"] = f"https://{environ['SPACE_HOST']}"
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {settings.port}.")
    if settings.backend in ("tgi", "openai") and not settings.endpoint:
        raise ConfigError(
            f"--backend {settings.backend} needs --endpoint (or PLAYGROUND_ENDPOINT), e.g. http://localhost:8080."
        )
    if settings.endpoint and not settings.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"--endpoint must start with http:// or https://, got {settings.endpoint!r}.")
    if settings.quantize != "none" and settings.backend != "local":
        raise ConfigError("--quantize applies to --backend local only; a remote engine quantizes on its own side.")
    for name in ("generation_timeout_s", "first_token_timeout_s", "idle_timeout_s"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{_flag(name)} must be positive.")
    for name in ("remote_concurrency", "max_queue"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{_flag(name)} must be at least 1.")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"--log-level must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}.")
