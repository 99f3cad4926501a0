"""The playground's core, below the edges: models, modes, runs and recent generations.

An edge (Gradio, REST) calls ``Playground.start`` with raw user input; it
validates the parameters once, lets the mode build a prompt that fits, waits
its turn on the model, streams through ``generation.run_stream``, and keeps
the finished Generation so that only server-made output can be shared.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from playground import __version__
from playground.backends.base import Backend, BackendInfo
from playground.config import Settings
from playground.errors import (
    BusyError,
    ConfigError,
    InputError,
    ModelError,
    ShareNotFoundError,
    StoreError,
    UnknownModelError,
)
from playground.generation import Outcome, run_stream
from playground.loading import LoadProgress
from playground.metrics import Metrics, log_generation
from playground.params import GenerationParams
from playground.prompt import Prompt
from playground.prompting.budget import check_text, plan_budget
from playground.prompting.chat import TechAssistantPrompt, build_chat, parse_tech_assistant, present_reply
from playground.prompting.complete import build_complete
from playground.prompting.fill import build_fill, splice
from playground.prompting.prepared import Prepared
from playground.record import Generation
from playground.registry import ModelSpec
from playground.store import CreatedShare, ShareStore

log = logging.getLogger(__name__)

MODES = ("chat", "fill", "complete")
RECENT_LIMIT = 2000  # finished generations kept in memory, shareable until evicted


@dataclass
class ModelSlot:
    """One selectable model: its spec, its backend once loaded, and its turn-taking."""

    spec: ModelSpec
    backend: Backend | None = None
    progress: LoadProgress = field(default_factory=LoadProgress)
    concurrency: int = 1  # local models serve one generation at a time
    max_queue: int = 64
    _gate: threading.Semaphore = field(init=False)
    _waiting: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._gate = threading.Semaphore(self.concurrency)

    def require_backend(self) -> Backend:
        if self.backend is not None:
            return self.backend
        if self.progress.error:
            raise ModelError(f"{self.spec.id} failed to load: {self.progress.error}")
        raise ModelError(f"{self.spec.id} is still loading ({self.progress.message}). Try again in a moment.")

    def info(self) -> BackendInfo:
        if self.backend is not None:
            return self.backend.info()
        return BackendInfo(model_id=self.spec.id, backend="local", context_length=self.spec.context_length, loaded=False)

    def acquire(self, cancel: threading.Event) -> None:
        """Wait for a free slot; give up when the queue is full or the caller cancels."""
        with self._lock:
            if self._waiting >= self.max_queue:
                raise BusyError(
                    f"{self.max_queue} requests are already waiting for {self.spec.id}. Try again in a minute."
                )
            self._waiting += 1
        try:
            while not self._gate.acquire(timeout=0.1):
                if cancel.is_set():
                    raise BusyError("Cancelled while waiting for the model.")
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        self._gate.release()

    @property
    def waiting(self) -> int:
        return self._waiting


class RecentGenerations:
    """Finished generations by id, bounded; the only source a share can be made from."""

    def __init__(self, limit: int = RECENT_LIMIT):
        self.limit = limit
        self._items: OrderedDict[str, Generation] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, generation: Generation) -> None:
        with self._lock:
            self._items[generation.id] = generation
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, generation_id: str) -> Generation | None:
        with self._lock:
            return self._items.get(generation_id)


class Run:
    """One generation in flight: iterate for visible deltas, then read ``record``."""

    def __init__(self, playground: Playground, slot: ModelSlot, mode: str, prepared: Prepared,
                 params: GenerationParams, raw_inputs: dict[str, Any]):
        self.playground, self.slot, self.mode = playground, slot, mode
        self.prepared, self.params, self.raw_inputs = prepared, params, raw_inputs
        self.cancel = threading.Event()
        self.outcome = Outcome()
        self.id = secrets.token_urlsafe(16)
        self.created_at = datetime.now(UTC).isoformat()
        self.record: Generation | None = None

    def __iter__(self) -> Iterator[str]:
        backend = self.slot.require_backend()
        self.slot.acquire(self.cancel)
        self.playground.track(self, running=True)
        failed = False
        try:
            yield from run_stream(
                backend, self.prepared.prompt, self.params, self.cancel, self.outcome,
                time_limit_s=self.playground.settings.generation_timeout_s,
            )
        except Exception:
            failed = True  # raised before any text: the edge shows the error, there is nothing to record
            raise
        finally:
            self.slot.release()
            self.playground.track(self, running=False)
            if not failed:  # finished, or closed by Stop / a closed tab: record what was shown
                self.record = self._finish(backend.info())

    def stop(self) -> None:
        self.cancel.set()

    @property
    def raw_prompt(self) -> str:
        """Exactly what the model is given: the backend's own rendering of the prompt."""
        return self.slot.require_backend().render(self.prepared.prompt)

    def present(self, raw: str) -> tuple[str, str | None]:
        """(what the user sees, the fill middle) for the text generated so far."""
        if self.mode == "fill":
            return splice(self.raw_inputs["code"], raw)
        if self.mode == "chat":
            return present_reply(raw), None
        return raw, None

    def _finish(self, info: BackendInfo) -> Generation:
        outcome = self.outcome
        text, middle = self.present(outcome.text)
        notices = list(self.prepared.notices)
        if outcome.timed_out:
            notices.append(f"Stopped at the {self.playground.settings.generation_timeout_s:g} s time limit.")
        if outcome.finish_reason == "error":
            notices.append("The generation was interrupted; the output is incomplete.")
        record = Generation(
            id=self.id,
            mode=self.mode,
            model=self.slot.spec.id,
            created_at=self.created_at,
            app_version=__version__,
            inputs=self.prepared.inputs,
            raw_prompt=self.raw_prompt,
            prompt_version=self.prepared.prompt_version,
            params=self.params.to_dict(),
            backend=_backend_summary(info),
            text=text,
            middle=middle,
            finish_reason=outcome.finish_reason,
            error=outcome.error,
            notices=notices,
            usage={"prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens},
            timings={
                "ttft_ms": None if outcome.ttft_ms is None else round(outcome.ttft_ms, 1),
                "total_ms": round(outcome.total_ms, 1),
                "tokens_per_s": outcome.tokens_per_s,
            },
        )
        self.playground.finished(record)
        return record


def _backend_summary(info: BackendInfo) -> dict[str, Any]:
    placement = info.placement or {}
    return {
        "kind": info.backend,
        "endpoint": info.endpoint,
        "dtype": info.dtype,
        "quantization": info.quantization,
        "revision": info.revision,
        "placement": placement.get("summary"),
    }


class Playground:
    def __init__(self, settings: Settings, slots: Mapping[str, ModelSlot], chat_prompt: TechAssistantPrompt,
                 store: ShareStore | None = None):
        if not slots:
            raise InputError("At least one model must be configured.")
        self.settings = settings
        self.slots = dict(slots)
        self.chat_prompt = chat_prompt
        self.recent = RecentGenerations()
        self.store = store
        self.metrics = Metrics(self.queue_depth)
        self._running: set[Run] = set()
        self._running_lock = threading.Lock()

    def queue_depth(self) -> int:
        return sum(slot.waiting for slot in self.slots.values())

    def finished(self, record: Generation) -> None:
        self.recent.add(record)
        self.metrics.observe(record)
        log_generation(record, include_prompt=self.settings.log_prompts)

    def track(self, run: Run, running: bool) -> None:
        with self._running_lock:
            (self._running.add if running else self._running.discard)(run)

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop in-flight generations (each finishes its record) and close the store."""
        with self._running_lock:
            runs = list(self._running)
        log.info("Shutting down: stopping %d in-flight generation(s), then closing the share store", len(runs))
        for run in runs:
            run.stop()
        deadline = time.monotonic() + grace_s
        while self._running and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.store is not None:
            self.store.close()
        for slot in self.slots.values():
            if slot.backend is not None:
                slot.backend.close()
        log.info("Shut down cleanly")

    def share(self, generation_id: str) -> CreatedShare:
        """Persist a generation this server made and still holds; clients never supply content."""
        if self.store is None:
            raise StoreError("Sharing is turned off on this server.")
        record = self.recent.get(generation_id) if isinstance(generation_id, str) else None
        if record is None:
            raise ShareNotFoundError(
                "This server holds no finished generation with that id (it may have restarted since). "
                "Generate again, then share."
            )
        return self.store.create(record)

    def open_share(self, share_id: str) -> Generation:
        if self.store is None:
            raise StoreError("Sharing is turned off on this server.")
        return self.store.get(share_id)

    @property
    def default_model(self) -> str:
        return next(iter(self.slots))

    def slot(self, model_id: str | None) -> ModelSlot:
        slot = self.slots.get(model_id or self.default_model)
        if slot is None:
            raise UnknownModelError(f"Model {model_id!r} is not served here. Available: {', '.join(self.slots)}.")
        return slot

    def prepare(self, mode: str, model_id: str | None, inputs: Mapping[str, Any],
                raw_params: Mapping[str, Any] | None) -> tuple[ModelSlot, Prepared, GenerationParams]:
        """Validate, budget and build the prompt; raises InputError subclasses with user messages."""
        if mode not in MODES:
            raise InputError(f"Unknown mode {mode!r}; use one of {', '.join(MODES)}.")
        slot = self.slot(model_id)
        backend = slot.require_backend()
        info = backend.info()
        params = GenerationParams.parse(raw_params, slot.spec.defaults).with_seed()
        if info.max_new_tokens_limit is not None and params.max_new_tokens > info.max_new_tokens_limit:
            params = replace(params, max_new_tokens=info.max_new_tokens_limit)
        budget = plan_budget(info.context_length, params.max_new_tokens, info.max_input_tokens)

        def count(text: str) -> int:
            return backend.count_tokens(Prompt.of(text)) if text else 0

        if mode == "complete":
            prepared = build_complete(inputs.get("prompt", ""), budget, count)
        elif mode == "fill":
            prepared = build_fill(inputs.get("code", ""), inputs.get("filename") or "", slot.spec, budget, count)
        else:
            history = _history(inputs.get("history") or [])
            chat_prompt = self._chat_prompt(inputs.get("system_prompt"))
            prepared = build_chat(chat_prompt, history, inputs.get("message", ""), budget, count)
            if chat_prompt is not self.chat_prompt:
                prepared = replace(prepared, inputs={**prepared.inputs, "system_prompt": inputs["system_prompt"]})
        stops = tuple(dict.fromkeys(params.stop + prepared.stops))
        return slot, prepared, replace(params, max_new_tokens=prepared.reply_tokens, stop=stops)

    def _chat_prompt(self, custom: Any) -> TechAssistantPrompt:
        """Ours, unless the user edited it in the UI or sent their own over the API."""
        if custom is None or custom == self.chat_prompt.text:
            return self.chat_prompt
        try:
            return parse_tech_assistant(check_text("The chat prompt", custom))
        except ConfigError as exc:
            raise InputError(exc.message) from None

    def start(self, mode: str, model_id: str | None, inputs: Mapping[str, Any],
              raw_params: Mapping[str, Any] | None = None) -> Run:
        slot, prepared, params = self.prepare(mode, model_id, inputs, raw_params)
        return Run(self, slot, mode, prepared, params, dict(inputs))


def _history(raw: Any) -> list[tuple[str, str]]:
    """Chat history as (user, assistant) pairs; accepts pairs or role/content messages."""
    if not isinstance(raw, list):
        raise InputError("history must be a list of [user, assistant] pairs or {role, content} messages.")
    pairs: list[tuple[str, str]] = []
    pending_user: str | None = None
    for item in raw:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            pairs.append((str(item[0] or ""), str(item[1] or "")))
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = _message_text(item.get("content"))
            if item["role"] == "user":
                pending_user = content
            else:
                pairs.append((pending_user or "", content))
                pending_user = None
        else:
            raise InputError("history must be a list of [user, assistant] pairs or {role, content} messages.")
    return pairs


def _message_text(content: Any) -> str:
    """Gradio 6 chat messages carry a list of {"type": "text", "text": ...} blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""

