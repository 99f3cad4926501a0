"""Settings → a running Playground: model slots, their backends, and background loading.

The server starts answering at once; a local model loads on a thread and
``/api/health`` says "loading" until it is ready, so a Space's health check
and the UI both see progress instead of a dead port. Serving only remote
engines imports neither torch nor transformers.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported when a remote backend is made: a local-only app never loads the clients
    from playground.backends.remote_common import RemoteBackend
from playground.checks import AttributionCheck
from playground.config import Settings
from playground.config_types import ExtraModel
from playground.errors import ConfigError, ModelError, PlaygroundError, UnknownModelError
from playground.registry import ModelSpec, load_registry, resolve_source, spec_from_folder
from playground.service import Playground
from playground.slots import ModelSlot
from playground.store import ShareStore
from playground.tech_assistant import load_tech_assistant

log = logging.getLogger("playground.bootstrap")


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def remote_backend(spec: ModelSpec, settings: Settings, kind: str, endpoint: str) -> RemoteBackend:
    """A TGI or OpenAI-compatible backend for ``spec`` at ``endpoint``. The endpoint token goes only to
    the origin of ``--endpoint``: an extra model elsewhere must not receive another server's secret."""
    token = settings.endpoint_token if _origin(endpoint) == _origin(settings.endpoint) else None
    options = {"token": token, "timeouts": settings.timeouts, "concurrency": settings.remote_concurrency}
    if kind == "tgi":
        from playground.backends.tgi import TgiBackend

        return TgiBackend(spec, endpoint, **options)  # type: ignore[arg-type]  # typed by RemoteBackend
    from playground.backends.openai_compat import OpenAiCompletionsBackend

    return OpenAiCompletionsBackend(spec, endpoint, **options)  # type: ignore[arg-type]


def remote_slot(spec: ModelSpec, settings: Settings, kind: str, endpoint: str) -> ModelSlot:
    backend = remote_backend(spec, settings, kind, endpoint)
    backend.start_probe()  # health and the model list say now whether the engine answers
    slot = ModelSlot(spec, backend, concurrency=settings.remote_concurrency, max_queue=settings.max_queue)
    slot.progress.step("ready", f"{spec.id} served by {endpoint}")
    return slot


def _spec_for(name: str, registry: dict[str, ModelSpec], *, remote: bool = False) -> ModelSpec:
    """The registry entry; else, for a folder, what its files say; else a placeholder that the local
    loader (its files) or the remote engine (its limits) completes. A remote model may have any id."""
    try:
        spec, source = resolve_source(name, registry)
    except UnknownModelError:
        if not remote:
            raise
        spec, source = None, name
    if spec is None and Path(source).is_dir():
        spec = spec_from_folder(name, Path(source))
    return spec or ModelSpec(id=name, source=source, context_length=2048)


def _extra_slots(extras: tuple[ExtraModel, ...], settings: Settings, registry: dict[str, ModelSpec],
                 taken: str) -> dict[str, ModelSlot]:
    """Slots for ``--extra-models``; an id already in use is refused rather than silently replaced."""
    slots: dict[str, ModelSlot] = {}
    for extra in extras:
        spec = _spec_for(extra.model, registry, remote=True)
        if spec.id == taken or spec.id in slots:
            raise ConfigError(f"--extra-models names {spec.id!r} twice, or as the main model (--model); "
                              "give each model its own id.")
        slots[spec.id] = remote_slot(spec, settings, extra.kind, extra.endpoint)
    return slots


def _load_local(slot: ModelSlot, registry: dict[str, ModelSpec], settings: Settings) -> None:
    from playground.backends.local import LocalBackend
    from playground.loading import load_model

    try:
        loaded = load_model(settings.model, registry, settings, slot.progress)
    except PlaygroundError as exc:
        slot.progress.fail(exc.message)
        log.error("Loading %s failed: %s", settings.model, exc.message)
        return
    slot.spec = loaded.spec
    slot.backend = LocalBackend(loaded)


def _load_in_engine(slot: ModelSlot, settings: Settings) -> None:
    """Start the engine process; the slot gets its backend once the model serves (health stays 503 until
    then, as with in-process loading), and keeps it through restarts, which health reports."""
    from playground.engine.client import EngineBackend

    def ready(spec: ModelSpec) -> None:
        slot.spec = spec
        slot.backend = engine

    engine = EngineBackend(settings, slot.progress, on_ready=ready)
    if not engine.wait_ready():
        log.error("Loading %s failed: %s", settings.model, slot.progress.error)


def _main_slot(spec: ModelSpec, settings: Settings,
               registry: dict[str, ModelSpec]) -> tuple[ModelSlot, threading.Thread | None]:
    if settings.backend == "fake":
        from playground.backends.fake import FakeBackend

        backend = FakeBackend(model_id=spec.id, context_length=spec.context_length)
        return ModelSlot(spec, backend, max_queue=settings.max_queue), None
    if settings.backend in ("tgi", "openai"):
        return remote_slot(spec, settings, settings.backend, settings.endpoint or ""), None
    slot = ModelSlot(spec, max_queue=settings.max_queue)
    load, args = (_load_in_engine, (slot, settings)) if settings.engine == "process" else \
        (_load_local, (slot, registry, settings))
    thread = threading.Thread(target=load, args=args, name="model-loader", daemon=True)
    thread.start()
    return slot, thread


def build_playground(settings: Settings, *, wait: bool = False) -> tuple[Playground, threading.Thread | None]:
    """Create the playground; a local model starts loading on a thread (joined when ``wait``)."""
    registry = load_registry()
    chat_prompt = load_tech_assistant(settings.chat_prompt, settings.hf_token)
    spec = _spec_for(settings.model, registry, remote=settings.backend in ("tgi", "openai"))
    extra = _extra_slots(settings.extra_models, settings, registry, spec.id)  # refuses clashing ids first
    slot, thread = _main_slot(spec, settings, registry)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ShareStore.open(settings.database)
    if thread is not None and wait:
        thread.join()
        if slot.progress.error:
            raise ModelError(slot.progress.error)
    checks = None
    if settings.attribution:
        checks = AttributionCheck(settings.data_dir, settings.attribution_indexes)
        checks.start()  # the web server answers while the default index is built
    return Playground(settings, {slot.spec.id: slot, **extra}, chat_prompt, store, checks), thread
