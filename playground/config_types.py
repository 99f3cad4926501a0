"""Small typed settings values, each parsed once from its flag or env var text.

Each parser takes the name the user typed (a flag or env var) so its error
says exactly what to fix. Downstream code receives these objects and never
parses the text again.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.backends.registry import REMOTE
from playground.errors import ConfigError

DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class RemoteTimeouts:
    first_token_s: float = 60.0  # long prompts on a busy engine take a while to prefill
    idle_s: float = 30.0  # between tokens; must exceed TGI's 15 s keep-alive gap to be useful
    connect_s: float = 10.0  # reading the engine's limits and opening a request


@dataclass(frozen=True)
class RateLimits:
    """Per-client limits over a sliding minute; 0 turns one off. Generous: a person never meets them."""

    generate_per_minute: int = 120
    share_create_per_minute: int = 60
    share_lookup_per_minute: int = 300
    per_key_per_minute: int = 600  # editor-route requests per API key: an editor asks on every pause in typing
    # Requests one client may have open at once (a browser tab holds two or three); 0 turns it off.
    open_per_client: int = 64


@dataclass(frozen=True)
class ForwardedFor:
    """Whose address the limits count: ignore X-Forwarded-For (the peer), its first entry (forgeable: any
    client can claim any address there), or the N-th from the right behind N proxies you run (a Space's
    default is 1: the entry its proxy appends)."""

    policy: Literal["ignore", "first", "hops"] = "ignore"
    hops: int = 0

    @classmethod
    def parse(cls, name: str, text: str) -> ForwardedFor:
        if text in ("ignore", "first"):
            return cls(text)  # type: ignore[arg-type]  # narrowed by the test above
        if re.fullmatch(r"[1-9][0-9]{0,2}", text):
            return cls("hops", int(text))
        raise ConfigError(
            f"{name} must be ignore, first, or the number of proxies you run in front of the app (1 or more), "
            f"got {text!r}."
        )

    def client(self, peer: str, entries: Sequence[str]) -> str:
        """The client address, given the connection's peer and the X-Forwarded-For entries in order.

        Anything that is not an IP address counts as the peer, so made-up strings cannot mint clients.
        """
        if self.policy == "ignore":
            return peer
        if self.policy == "first":
            candidate = entries[0] if entries else peer
        else:
            candidate = entries[-self.hops] if len(entries) >= self.hops else peer
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            return peer

    def __str__(self) -> str:
        return str(self.hops) if self.policy == "hops" else self.policy


@dataclass(frozen=True)
class ExtraModel:
    """One more remote model for the selector: ``ID=tgi:URL`` or ``ID=openai:URL``."""

    model: str
    kind: str  # a remote backend's name in backends.registry.BACKENDS
    endpoint: str


def parse_extra_models(name: str, text: str) -> tuple[ExtraModel, ...]:
    """``starcoder2-15b=openai:http://vllm:8000/v1,starcoder=tgi:http://tgi:80`` → entries."""
    entries = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        model, _, target = part.partition("=")
        kind, _, url = target.partition(":")
        if not model.strip() or kind not in REMOTE or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{name} entries look like starcoder=tgi:http://host:8080 or starcoder2-15b=openai:http://host:8000/v1;"
                f" could not read {part!r}."
            )
        entries.append(ExtraModel(model.strip(), kind, url))
    return tuple(entries)


@dataclass(frozen=True)
class DeviceMap:
    """An accelerate placement: a strategy name, or an explicit module → device mapping."""

    strategy: str | None = None
    mapping: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, text: str) -> DeviceMap | None:
        if not text:
            return None
        if text in DEVICE_MAP_STRATEGIES:
            return cls(strategy=text)
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError:
            mapping = None
        if not isinstance(mapping, dict) or not mapping or not all(isinstance(k, str) for k in mapping):
            raise ConfigError(
                f"{name} must be one of {', '.join(DEVICE_MAP_STRATEGIES)} or a JSON object such as "
                '\'{"transformer.wte": 0, "transformer.h.0": 0, "lm_head": "cpu"}\'; got ' + repr(text) + "."
            )
        return cls(mapping=mapping)

    def names_gpu(self) -> bool:
        return any(isinstance(v, int) or str(v).startswith("cuda") for v in self.mapping.values())

    def __str__(self) -> str:
        return self.strategy or json.dumps(dict(self.mapping))


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
