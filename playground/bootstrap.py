"""Settings → a running Playground: model slots, their backends, and background loading.

The server starts answering at once; a local model loads on a thread and
``/api/health`` says "loading" until it is ready, so a Space's health check
and the UI both see progress instead of a dead port.
"""

from __future__ import annotations

import logging
import threading

from playground.backends.base import Backend
from playground.config import Settings, split_extra_model
from playground.errors import ModelError, PlaygroundError
from playground.loading import LoadProgress, load_model, resolve_source
from playground.registry import ModelSpec, load_registry
from playground.service import ModelSlot, Playground
from playground.store import ShareStore
from playground.tech_assistant import load_tech_assistant

log = logging.getLogger("playground.bootstrap")


def remote_backend(spec: ModelSpec, settings: Settings, kind: str, endpoint: str) -> Backend:
    """A TGI or OpenAI-compatible backend for ``spec`` at ``endpoint``."""
    timeouts = {"first_token_timeout_s": settings.first_token_timeout_s, "idle_timeout_s": settings.idle_timeout_s}
    if kind == "tgi":
        from playground.backends.tgi import TgiBackend

        return TgiBackend(spec, endpoint, token=settings.endpoint_token,
                          concurrency=settings.remote_concurrency, **timeouts)
    from playground.backends.openai_compat import OpenAiCompletionsBackend

    return OpenAiCompletionsBackend(spec, endpoint, token=settings.endpoint_token,
                                    concurrency=settings.remote_concurrency, **timeouts)


def remote_slot(spec: ModelSpec, settings: Settings, kind: str, endpoint: str) -> ModelSlot:
    slot = ModelSlot(spec, remote_backend(spec, settings, kind, endpoint), concurrency=settings.remote_concurrency,
                     max_queue=settings.max_queue)
    slot.progress.step("ready", f"{spec.id} served by {endpoint}")
    return slot


def _extra_slots(settings: Settings, registry: dict[str, ModelSpec]) -> dict[str, ModelSlot]:
    slots = {}
    for entry in settings.extra_models:
        model, kind, endpoint = split_extra_model(entry)
        spec, source = resolve_source(model, registry)
        spec = spec or ModelSpec(id=model, source=source, context_length=2048)
        slots[spec.id] = remote_slot(spec, settings, kind, endpoint)
    return slots


def _load_local(slot: ModelSlot, registry: dict[str, ModelSpec], settings: Settings) -> None:
    from playground.backends.local import LocalBackend

    try:
        loaded = load_model(settings.model, registry, settings, slot.progress)
    except PlaygroundError as exc:
        slot.progress.phase, slot.progress.error = "failed", exc.message
        log.error("Loading %s failed: %s", settings.model, exc.message)
        return
    slot.spec = loaded.spec
    slot.backend = LocalBackend(loaded)


def build_playground(settings: Settings, *, wait: bool = False) -> tuple[Playground, threading.Thread | None]:
    """Create the playground; a local model starts loading on a thread (joined when ``wait``)."""
    registry = load_registry()
    chat_prompt = load_tech_assistant(settings.chat_prompt, settings.hf_token)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ShareStore.open(settings.database)
    spec, source = resolve_source(settings.model, registry)
    if spec is None:
        # Placeholder until the files are read; context comes from the model's config at load time.
        spec = ModelSpec(id=settings.model, source=source, context_length=2048)
    extra = _extra_slots(settings, registry)
    thread = None
    if settings.backend == "fake":
        from playground.backends.fake import FakeBackend

        slot = ModelSlot(spec, FakeBackend(model_id=spec.id, context_length=spec.context_length),
                         max_queue=settings.max_queue)
    elif settings.backend in ("tgi", "openai"):
        slot = remote_slot(spec, settings, settings.backend, settings.endpoint or "")
    else:
        slot = ModelSlot(spec, progress=LoadProgress(), max_queue=settings.max_queue)
        thread = threading.Thread(target=_load_local, args=(slot, registry, settings), name="model-loader",
                                  daemon=True)
        thread.start()
        if wait:
            thread.join()
            if slot.progress.error:
                raise ModelError(slot.progress.error)
    return Playground(settings, {spec.id: slot, **extra}, chat_prompt, store), thread
