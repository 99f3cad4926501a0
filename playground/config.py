"""One frozen Settings object, built from ``PLAYGROUND_*`` env vars and CLI flags.

This is the only module that reads the environment it is handed. Flags win
over env vars, env vars over the defaults, and each default is written once,
on its field below. Values with structure (timeouts, limits, extra models,
the device map) are parsed here into the small typed objects of
``config_types``; nothing downstream parses text again.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from playground.backends.registry import NAMES as BACKEND_NAMES
from playground.backends.registry import kind_of
from playground.config_types import (
    DeviceMap,
    ExtraModel,
    ForwardedFor,
    RateLimits,
    RemoteTimeouts,
    parse_extra_models,
    parse_max_memory,
)
from playground.errors import ConfigError

ENGINES = ("process", "inprocess")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("none", "8bit", "4bit")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    model: str = "nano-starcoder"  # registry id, hub id or local folder
    revision: str | None = None  # hub branch, tag or commit
    backend: str = "local"  # a name in backends.registry.BACKENDS
    # A local model runs in its own engine process: the web server answers at once and keeps its own
    # interpreter, and a crashed model is restarted without taking the app down. inprocess: for debugging.
    engine: str = "process"
    endpoint: str | None = None  # remote engine base URL
    extra_models: tuple[ExtraModel, ...] = ()  # more remote models for the selector
    endpoint_token: str | None = field(default=None, repr=False)  # bearer token; repr=False keeps it out of logs
    hf_token: str | None = field(default=None, repr=False)  # for gated hub repos (HF_TOKEN)
    dtype: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device_map: DeviceMap | None = None  # None: the whole model on one device
    max_memory: Mapping[str, str] | None = None  # {"0": "20GiB", "cpu": "64GiB"}
    quantize: str = "none"  # none | 8bit | 4bit (bitsandbytes, CUDA only)
    # torch's intra-op threads for a local model; None: every core but one (at least one). On 2 cores a
    # second model thread contended with the web process's own work and streamed slower (README, Performance).
    cpu_threads: int | None = None
    # Compile a local model's decode step (torch.compile on a static cache): faster tokens, but each new
    # batch size and cache length compiles once, seconds to a minute (playground.backends.local_compile).
    compile_steps: bool = False
    data_dir: Path = Path("data")
    database_url: str | None = None  # any SQLAlchemy URL; default: SQLite under data_dir
    # Where rate limits count: this process (memory), the shared database, or auto (the database when it
    # is not SQLite: replicas share PostgreSQL, and a limit must hold for all of them together).
    limits_store: str = "auto"
    generation_retention_h: float = 24.0  # how long unshared generations stay shareable; 0 = for good
    public_url: str | None = None  # absolute base for share links
    chat_prompt: Path | None = None  # a Tech Assistant prompt file to use instead of ours
    generation_timeout_s: float = 120.0  # wall-clock cap on one generation
    timeouts: RemoteTimeouts = RemoteTimeouts()
    remote_concurrency: int = 16  # simultaneous generations on a remote engine
    max_queue: int = 64  # waiting requests beyond this get "busy"
    limits: RateLimits = RateLimits()
    forwarded_for: ForwardedFor = ForwardedFor()
    attribution: bool = True  # check every generation for verbatim copies from the code indexes
    attribution_indexes: tuple[Path, ...] = ()  # indexes of your own, besides nano-starcoder's corpus
    log_prompts: bool = False  # put prompt text in the generation log (off: it may hold secrets)
    log_key: str | None = field(default=None, repr=False)  # HMAC key for ids in logs; None: random per process
    # Keys for the editor routes (/v1/*, /generate, /infill); none: those routes are open, as /api is.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_key_file: Path | None = None  # one key per line; blank lines and "#" comments skipped
    log_level: str = "INFO"

    @property
    def model_threads(self) -> int:
        """torch's intra-op threads for a local model."""
        return self.cpu_threads or max(1, (os.cpu_count() or 2) - 1)

    def editor_keys(self) -> tuple[str, ...]:
        """The API keys: the flags' and the key file's. Read once, when the app is made."""
        keys = list(self.api_keys)
        if self.api_key_file is not None:
            try:
                lines = self.api_key_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--api-key-file {self.api_key_file} cannot be read ({exc.__class__.__name__}). "
                                  "Give a UTF-8 text file with one key per line.") from None
            keys += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if self.api_key_file is not None and not keys:
            raise ConfigError(f"--api-key-file {self.api_key_file} holds no key. Put one key per line in it.")
        return tuple(dict.fromkeys(keys))

    @property
    def limits_shared(self) -> bool:
        """Whether the rate limits count in the database, for all replicas together."""
        if self.limits_store == "auto":
            return not self.database.startswith("sqlite")
        return self.limits_store == "database"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'playground.db').resolve()}"


Parser = Callable[[str, str], Any]


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


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Parser:
    def parse(name: str, text: str) -> str:
        value = text.upper() if upper else text
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {text!r}.")
        return value

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


def _path(name: str, text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def _paths(name: str, text: str) -> tuple[Path, ...]:
    """Several paths: the flag repeated, or one value separated by commas (also the env var)."""
    return tuple(Path(part.strip()).expanduser() for part in text.split(",") if part.strip())


def _keys(name: str, text: str) -> tuple[str, ...]:
    """API keys: the flag repeated, or one value separated by commas (also the env var)."""
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    if any(len(key) < 16 for key in keys):
        raise ConfigError(f"{name}: each key must be at least 16 characters (e.g. from `openssl rand -hex 24`).")
    return keys


def _on_off(name: str, text: str) -> bool:
    if text.strip().lower() in ("on", "off"):
        return text.strip().lower() == "on"
    return _bool(name, text)


@dataclass(frozen=True)
class Option:
    """One flag: its env var, how to parse it, its help, and where it lands (``group.field`` or ``field``)."""

    env: str
    parse: Parser
    help: str
    target: str
    repeat: bool = False  # the flag may be given several times; the values are joined with commas


_OPTIONS: dict[str, Option] = {
    "--host": Option("PLAYGROUND_HOST", _text, "address to listen on (0.0.0.0 on a Space)", "host"),
    "--port": Option("PLAYGROUND_PORT", _int, "port to listen on", "port"),
    "--model": Option("PLAYGROUND_MODEL", _text, "registry id (see models/), hub id or local folder", "model"),
    "--revision": Option("PLAYGROUND_REVISION", _text, "hub branch, tag or commit to load", "revision"),
    "--backend": Option("PLAYGROUND_BACKEND", _choice(BACKEND_NAMES),
                        "where the model runs: " + ", ".join(BACKEND_NAMES), "backend"),
    "--engine": Option("PLAYGROUND_ENGINE", _choice(ENGINES), "a local model runs in its own process (process) or "
                       "in the web server's (inprocess, for debugging)", "engine"),
    "--endpoint": Option("PLAYGROUND_ENDPOINT", _text, "base URL of a TGI or OpenAI-compatible server", "endpoint"),
    "--extra-models": Option("PLAYGROUND_EXTRA_MODELS", parse_extra_models,
                             "more remote models, comma-separated ID=tgi:URL or ID=openai:URL", "extra_models"),
    "--endpoint-token": Option("PLAYGROUND_ENDPOINT_TOKEN", _text, "bearer token for --endpoint", "endpoint_token"),
    "--hf-token": Option("HF_TOKEN", _text, "Hugging Face token for gated models", "hf_token"),
    "--dtype": Option("PLAYGROUND_DTYPE", _choice(DTYPES), "weights dtype; auto = bf16 on CUDA, fp32 on CPU", "dtype"),
    "--device-map": Option("PLAYGROUND_DEVICE_MAP", DeviceMap.parse, "auto, balanced, sequential or a JSON mapping",
                           "device_map"),
    "--max-memory": Option("PLAYGROUND_MAX_MEMORY", parse_max_memory,
                           "per-device budget, e.g. 0=20GiB,1=20GiB,cpu=64GiB", "max_memory"),
    "--quantize": Option("PLAYGROUND_QUANTIZE", _choice(QUANTIZATIONS), "load in 8bit or 4bit with bitsandbytes (CUDA)",
                         "quantize"),
    "--cpu-threads": Option("PLAYGROUND_CPU_THREADS", _int, "torch threads of a local model; default: all cores "
                            "but one, left to the web process", "cpu_threads"),
    "--compile": Option("PLAYGROUND_COMPILE", _on_off, "compile a local model's decode step with torch.compile: "
                        "on or off (faster tokens; each new batch size and length compiles once)", "compile_steps"),
    "--data-dir": Option("PLAYGROUND_DATA_DIR", _path, "where the share database lives", "data_dir"),
    "--database-url": Option("PLAYGROUND_DATABASE_URL", _text, "SQLAlchemy URL overriding the SQLite file",
                             "database_url"),
    "--generation-retention": Option("PLAYGROUND_GENERATION_RETENTION", _float,
                                     "hours a finished generation stays in the database to be shared or read "
                                     "(shares are kept for good); 0 = keep all", "generation_retention_h"),
    "--public-url": Option("PLAYGROUND_PUBLIC_URL", _text, "absolute base URL for share links", "public_url"),
    "--chat-prompt": Option("PLAYGROUND_CHAT_PROMPT", _path, "Tech Assistant prompt file to use instead of ours",
                            "chat_prompt"),
    "--generation-timeout": Option("PLAYGROUND_GENERATION_TIMEOUT", _float, "wall-clock limit per generation (s)",
                                   "generation_timeout_s"),
    "--first-token-timeout": Option("PLAYGROUND_FIRST_TOKEN_TIMEOUT", _float, "remote: wait for the first token (s)",
                                    "timeouts.first_token_s"),
    "--idle-timeout": Option("PLAYGROUND_IDLE_TIMEOUT", _float, "remote: longest gap between tokens (s)",
                             "timeouts.idle_s"),
    "--remote-concurrency": Option("PLAYGROUND_REMOTE_CONCURRENCY", _int, "simultaneous generations on a remote engine",
                                   "remote_concurrency"),
    "--max-queue": Option("PLAYGROUND_MAX_QUEUE", _int, "waiting requests before new ones are turned away",
                          "max_queue"),
    "--share-create-per-minute": Option("PLAYGROUND_SHARE_CREATE_PER_MINUTE", _int,
                                        "share creations per client; 0 = off", "limits.share_create_per_minute"),
    "--share-lookup-per-minute": Option("PLAYGROUND_SHARE_LOOKUP_PER_MINUTE", _int,
                                        "share lookups per client; 0 = off", "limits.share_lookup_per_minute"),
    "--generate-per-minute": Option("PLAYGROUND_GENERATE_PER_MINUTE", _int, "generations per client; 0 = off",
                                    "limits.generate_per_minute"),
    "--key-requests-per-minute": Option("PLAYGROUND_KEY_REQUESTS_PER_MINUTE", _int,
                                        "editor-route requests per API key; 0 = off", "limits.per_key_per_minute"),
    "--api-key": Option("PLAYGROUND_API_KEYS", _keys, "a key the editor routes (/v1, /generate, /infill) then need; "
                        "repeatable", "api_keys", repeat=True),
    "--api-key-file": Option("PLAYGROUND_API_KEY_FILE", _path, "a file of editor-route keys, one per line",
                             "api_key_file"),
    "--limits-store": Option("PLAYGROUND_LIMITS_STORE", _choice(("auto", "memory", "database")),
                             "where rate limits count: memory (this process), database (all replicas on it), or "
                             "auto (the database unless it is SQLite)", "limits_store"),
    "--open-per-client": Option("PLAYGROUND_OPEN_PER_CLIENT", _int,
                                "requests one client may have open at once (slow bodies, streams); 0 = off",
                                "limits.open_per_client"),
    "--forwarded-for": Option("PLAYGROUND_FORWARDED_FOR", ForwardedFor.parse,
                              "client address for the limits: ignore X-Forwarded-For, its first entry, or N = the "
                              "N-th from the right behind N proxies you run (1 on a Space)", "forwarded_for"),
    "--attribution": Option("PLAYGROUND_ATTRIBUTION", _on_off, "check generations for verbatim copies: on or off",
                            "attribution"),
    "--attribution-index": Option("PLAYGROUND_ATTRIBUTION_INDEX", _paths,
                                  "a code index of your own (python -m playground.attribution build); repeatable",
                                  "attribution_indexes", repeat=True),
    "--log-prompts": Option("PLAYGROUND_LOG_PROMPTS", _bool, "log prompt text with each generation (true/false)",
                            "log_prompts"),
    "--log-key": Option("PLAYGROUND_LOG_KEY", _text, "secret for the keyed hashes that stand for ids in logs "
                        "(set it to match hashes across restarts)", "log_key"),
    "--log-level": Option("PLAYGROUND_LOG_LEVEL", _choice(LOG_LEVELS, upper=True), "DEBUG, INFO, WARNING or ERROR",
                          "log_level"),
}


def _default(target: str) -> Any:
    value: Any = Settings()
    for part in target.split("."):
        value = getattr(value, part)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="StarCoder Playground. Every flag also reads an env var, shown in brackets.",
    )
    for flag, option in _OPTIONS.items():
        # metavar: argparse would print the dest (the flag itself) again, as "--host --HOST"
        parser.add_argument(flag, dest=flag, default=None, action="append" if option.repeat else "store",
                            metavar=flag.lstrip("-").replace("-", "_").upper(),
                            help=f"{option.help} [{option.env}] (default: {_default(option.target)})")
    return parser


def _read(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Parsed values by target, flags over env vars; unset options are absent."""
    args = vars(build_parser().parse_args(list(argv)))
    values: dict[str, Any] = {}
    for flag, option in _OPTIONS.items():
        if args.get(flag) is not None:
            given = ",".join(args[flag]) if option.repeat else args[flag]
            values[option.target] = option.parse(flag, given)
        elif environ.get(option.env):
            values[option.target] = option.parse(option.env, environ[option.env])
    if environ.get("SPACE_ID"):
        values.setdefault("host", "0.0.0.0")  # a Space routes traffic to the container, not to loopback
        # Behind its proxy every peer is the proxy. The entry the proxy itself appends (the last) cannot be
        # forged by a client; the first can, and let every spoofed request past the limits.
        values.setdefault("forwarded_for", ForwardedFor("hops", 1))
    if environ.get("SPACE_HOST"):
        values.setdefault("public_url", f"https://{environ['SPACE_HOST']}")
    return values


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags over env vars over defaults. Raises ConfigError naming the bad flag or variable."""
    values = _read(argv or [], environ if environ is not None else {})
    flat = {k: v for k, v in values.items() if "." not in k}
    settings = Settings(**flat)
    for group in ("timeouts", "limits"):
        nested = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(group + ".")}
        if nested:
            settings = replace(settings, **{group: replace(getattr(settings, group), **nested)})
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {settings.port}.")
    kind = kind_of(settings.backend)
    if kind.remote and not settings.endpoint:
        raise ConfigError(
            f"--backend {settings.backend} needs --endpoint (or PLAYGROUND_ENDPOINT), e.g. http://localhost:8080."
        )
    if settings.endpoint and not settings.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"--endpoint must start with http:// or https://, got {settings.endpoint!r}.")
    if settings.quantize != "none" and not kind.loads:
        raise ConfigError("--quantize applies to --backend local only; a remote engine quantizes on its own side.")
    if settings.cpu_threads is not None and settings.cpu_threads < 1:
        raise ConfigError("--cpu-threads must be at least 1 (or left out: every core but one).")
    positive = {"--generation-timeout": settings.generation_timeout_s,
                "--first-token-timeout": settings.timeouts.first_token_s, "--idle-timeout": settings.timeouts.idle_s}
    for flag, number in positive.items():
        if number <= 0:
            raise ConfigError(f"{flag} must be positive.")
    if settings.generation_retention_h < 0:
        raise ConfigError("--generation-retention must be 0 (keep all) or a number of hours.")
    for flag, count in {"--remote-concurrency": settings.remote_concurrency, "--max-queue": settings.max_queue}.items():
        if count < 1:
            raise ConfigError(f"{flag} must be at least 1.")
    limits = settings.limits
    for flag, count in {"--generate-per-minute": limits.generate_per_minute,
                        "--share-create-per-minute": limits.share_create_per_minute,
                        "--share-lookup-per-minute": limits.share_lookup_per_minute,
                        "--key-requests-per-minute": limits.per_key_per_minute,
                        "--open-per-client": limits.open_per_client}.items():
        if count < 0:
            raise ConfigError(f"{flag} must be 0 (no limit) or more, got {count}.")
