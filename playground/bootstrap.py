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

from playground.backends.registry import BackendKind, Order, kind_of
from playground.checks import AttributionCheck
from playground.config import Settings
from playground.config_types import ExtraModel
from playground.errors import ConfigError, ModelError, PlaygroundError, UnknownModelError
from playground.private_files import private_dir
from playground.registry import ModelSpec, load_registry, resolve_source, spec_from_folder
from playground.service import Playground
from playground.slots import ModelSlot
from playground.store import ShareStore
from playground.tech_assistant import load_tech_assistant

log = logging.getLogger("playground.bootstrap")


def make_slot(spec: ModelSpec, settings: Settings, backend: str, endpoint: str | None,
              models: dict[str, ModelSpec]) -> tuple[ModelSlot, threading.Thread | None]:
    """A slot for ``spec`` on the registered ``backend``. A backend that loads weights is made on a thread
    (returned): until it serves the slot has none, and health says "loading" with the progress."""
    kind = kind_of(backend)
    slot = ModelSlot(spec, concurrency=settings.remote_concurrency if kind.remote else 1,
                     max_queue=settings.max_queue)
    order = Order(spec, settings, endpoint, slot.progress, models)
    if not kind.loads:
        served = kind.make(order)
        slot.spec, slot.backend = served.spec, served.backend
        return slot, None
    thread = threading.Thread(target=_load, args=(slot, kind, order), name="model-loader", daemon=True)
    thread.start()
    return slot, thread


def _load(slot: ModelSlot, kind: BackendKind, order: Order) -> None:
    try:
        served = kind.make(order)
    except PlaygroundError as exc:
        slot.progress.fail(exc.message)
        log.error("Loading %s failed: %s", order.settings.model, exc.message)
        return
    slot.spec, slot.backend = served.spec, served.backend


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
        slots[spec.id], _ = make_slot(spec, settings, extra.kind, extra.endpoint, registry)
    return slots


def build_playground(settings: Settings, *, wait: bool = False) -> tuple[Playground, threading.Thread | None]:
    """Create the playground; a local model starts loading on a thread (joined when ``wait``)."""
    registry = load_registry()
    chat_prompt = load_tech_assistant(settings.chat_prompt, settings.hf_token)
    spec = _spec_for(settings.model, registry, remote=kind_of(settings.backend).remote)
    extra = _extra_slots(settings.extra_models, settings, registry, spec.id)  # refuses clashing ids first
    slot, thread = make_slot(spec, settings, settings.backend, settings.endpoint, registry)
    private_dir(settings.data_dir)  # the sandbox's user must not read shares or prompts
    store = ShareStore.open(settings.database)
    if thread is not None and wait:
        thread.join()
        if slot.progress.error:
            raise ModelError(slot.progress.error)
    # Not started here: the web app starts it once it is built (see ``create_app``).
    checks = AttributionCheck(settings.data_dir, settings.attribution_indexes) if settings.attribution else None
    return Playground(settings, {slot.spec.id: slot, **extra}, chat_prompt, store, checks), thread
