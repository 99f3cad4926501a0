"""Every backend by name: the one table that ``--backend``, ``--extra-models`` and bootstrap read.

A row says how to make the backend and two facts the settings need before
anything is made: whether it is served by an engine elsewhere (then it needs
an endpoint, and serves many users at once) and whether it loads weights here
(slow: bootstrap makes it on a thread while the app already answers).
Adding a backend is one row in ``BACKENDS``.

Factories import their implementation when called, so reading the table (the
settings do, at start-up) loads neither torch nor any HTTP client library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from playground.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from playground.backends.base import Backend
    from playground.backends.remote_protocol import EngineProtocol, Link
    from playground.config import Settings
    from playground.progress import LoadProgress
    from playground.registry import ModelSpec


@dataclass(frozen=True)
class Order:
    """What a factory is given."""

    spec: ModelSpec
    settings: Settings
    endpoint: str | None  # where a remote engine is (``--endpoint``, or an extra model's URL)
    progress: LoadProgress  # the slot's: a factory says how far it got, and why it failed
    models: dict[str, ModelSpec]  # the model registry, for a loader that resolves names


@dataclass(frozen=True)
class Served:
    """A made backend and the model as it knows it (a local model's files complete its registry entry)."""

    spec: ModelSpec
    backend: Backend


@dataclass(frozen=True)
class BackendKind:
    make: Callable[[Order], Served]  # raises PlaygroundError when the model cannot be served
    remote: bool = False  # served by an engine at an endpoint: needs one, and batches many users
    loads: bool = False  # loads weights in this app: slow, and the only kind that can be quantized


def _local(order: Order) -> Served:
    if order.settings.engine == "process":
        from playground.engine.client import EngineBackend

        engine = EngineBackend(order.settings, order.progress)
        if not engine.wait_ready():
            raise ModelError(order.progress.error or "The model's engine stopped before the model loaded.")
        return Served(engine.spec or order.spec, engine)
    from playground.backends.local import LocalBackend
    from playground.backends.local_compile import COMPILING
    from playground.loading import load_model

    loaded = load_model(order.settings.model, order.models, order.settings, order.progress)
    if order.settings.compile_steps:
        order.progress.step("compiling", COMPILING)
    return Served(loaded.spec, LocalBackend(loaded, compile_steps=order.settings.compile_steps))


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _remote(order: Order, protocol: Callable[[Link], EngineProtocol]) -> Served:
    from playground.backends.remote_common import RemoteBackend

    settings, endpoint = order.settings, order.endpoint or ""
    # The endpoint token goes only to the origin of --endpoint: an extra model elsewhere must not
    # receive another server's secret.
    token = settings.endpoint_token if _origin(endpoint) == _origin(settings.endpoint) else None
    backend = RemoteBackend(order.spec, endpoint, protocol, token=token, timeouts=settings.timeouts,
                            concurrency=settings.remote_concurrency)
    backend.start_probe()  # health and the model list say now whether the engine answers
    order.progress.step("ready", f"{order.spec.id} served by {endpoint}")
    return Served(order.spec, backend)


def _tgi(order: Order) -> Served:
    from playground.backends.tgi import TgiProtocol

    return _remote(order, TgiProtocol)


def _openai(order: Order) -> Served:
    from playground.backends.openai_compat import OpenAiProtocol

    return _remote(order, OpenAiProtocol)


def _fake(order: Order) -> Served:
    from playground.backends.fake import FakeBackend

    return Served(order.spec, FakeBackend(model_id=order.spec.id, context_length=order.spec.context_length))


BACKENDS: Mapping[str, BackendKind] = {
    "local": BackendKind(_local, loads=True),  # transformers, in its engine process or in this one
    "tgi": BackendKind(_tgi, remote=True),  # text-generation-inference
    "openai": BackendKind(_openai, remote=True),  # any OpenAI-compatible completions server
    "fake": BackendKind(_fake),  # scripted answers, for tests and offline demos
}
NAMES = tuple(BACKENDS)
REMOTE = tuple(name for name, kind in BACKENDS.items() if kind.remote)


def kind_of(name: str, flag: str = "--backend") -> BackendKind:
    """The registered backend ``name``; ConfigError, listing the names, for any other."""
    kind = BACKENDS.get(name)
    if kind is None:
        raise ConfigError(f"{flag} must be one of {', '.join(NAMES)}; got {name!r}.")
    return kind

