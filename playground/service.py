"""The playground's core, below the edges: models, modes, runs and recent generations.

An edge (Gradio, REST) calls ``Playground.start`` with raw user input; it
validates the parameters once, lets the mode build a prompt that fits, waits
its turn on the model, streams through ``stream.run_stream``, and keeps
the finished Generation so that only server-made output can be shared.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from playground import __version__
from playground.attribution import Report
from playground.backends.base import BackendInfo, TokenInfo
from playground.checks import AttributionCheck
from playground.config import Settings
from playground.errors import (
    ConfigError,
    InputError,
    InvalidParameterError,
    ShareNotFoundError,
    StoreError,
    UnknownModelError,
    quoted,
)
from playground.metrics import IdHasher, Metrics, log_generation
from playground.modes import Mode, ModeContext, Modes
from playground.params import GenerationParams
from playground.probabilities import TokenTrack, mean_logprob, rank
from playground.prompt import Prompt
from playground.prompting.budget import plan_budget
from playground.prompting.chat import TechAssistantPrompt
from playground.prompting.prepared import Prepared
from playground.record import BackendSummary, Candidate, Generation, Shown, Timings, Usage, tokens_to_json
from playground.slots import ModelSlot, RecentGenerations
from playground.store import CreatedShare, GenerationLog, ShareStore
from playground.stream import Outcome, run_candidates, run_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """A validated request, ready to run: which model, which mode, what prompt, which parameters."""

    slot: ModelSlot
    mode: Mode
    prepared: Prepared[Any]
    params: GenerationParams


class Run:
    """One generation in flight: iterate for visible deltas, then read ``record``."""

    def __init__(self, playground: Playground, plan: Plan):
        self.playground, self.plan = playground, plan
        self.slot, self.mode, self.prepared, self.params = plan.slot, plan.mode, plan.prepared, plan.params
        self.cancel = threading.Event()
        self.outcome = Outcome()
        self.id = secrets.token_urlsafe(16)
        self.created_at = datetime.now(UTC).isoformat()
        self.record: Generation | None = None
        self.sent: list[str] | None = None  # deltas an edge reported as delivered (see mark_sent)
        self._cursor: int | None = None  # where the next delta starts in the raw text (see pieces)

    def mark_sent(self, delta: str) -> None:
        """An edge that streams to a client reports each delta it hands over, so that a generation
        the client stopped records exactly what the client got."""
        if self.sent is None:
            self.sent = []
        self.sent.append(delta)

    def pieces(self) -> Iterator[tuple[str, list[dict[str, Any]] | None]]:
        """The deltas, each with the tokens behind it (None unless ``params.logprobs`` asked for them).
        A token split across two deltas comes in two parts, each with the token's numbers."""
        for delta in self:
            yield delta, self._delta_tokens(delta)

    def _delta_tokens(self, delta: str) -> list[dict[str, Any]] | None:
        if not self.params.logprobs or not self.outcome.track.complete:
            return None
        if self._cursor is None:  # the first delta: the generated part has begun, so its offset is known
            self._cursor = self.mode.offset(self.outcome.text)
        start, self._cursor = self._cursor, self._cursor + len(delta)
        return tokens_to_json(self.outcome.track.slice(start, self._cursor))

    def __iter__(self) -> Iterator[str]:
        backend = self.slot.require_backend()
        self.playground.track(self, running=True)  # before the queue: shutdown stops waiting runs too
        try:
            self.slot.acquire(self.cancel)
        except BaseException:
            self.playground.track(self, running=False)
            raise
        failed = False
        limits: dict[str, Any] = {"time_limit_s": self.playground.settings.generation_timeout_s,
                                  "ended": self._ended}
        try:
            if self.params.n > 1:  # ranked once all are done: nothing to stream
                run_candidates(backend, self.prepared.prompt, self.params, self.cancel, self.outcome, **limits)
                return
            stream = run_stream(backend, self.prepared.prompt, self.params, self.cancel, self.outcome, **limits)
            try:
                yield from self.mode.deltas(self.prepared, stream)
            finally:
                stream.close()  # a client that stops listening reaches the backend at once
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

    def _ended(self, raw: str) -> bool:
        """Whether the mode's own rule has ended this raw text (a fill that left its hole's block)."""
        return self.mode.ended(self.prepared, raw) is not None

    @property
    def raw_prompt(self) -> str:
        """Exactly what the model is given: the backend's own rendering of the prompt."""
        return self.slot.require_backend().render(self.prepared.prompt)

    def present(self, raw: str) -> Shown:
        """The text generated so far, as the user sees it."""
        return self.mode.present(self.prepared, raw)

    def _notices(self) -> list[str]:
        notices = list(self.prepared.notices) + list(self.outcome.notices)
        if self.outcome.timed_out:
            notices.append(f"Stopped at the {self.playground.settings.generation_timeout_s:g} s time limit.")
        if self.outcome.finish_reason == "error":
            notices.append("The generation was interrupted; the output is incomplete.")
        if self.outcome.looped:
            notices.append(LOOP_NOTICE)
        ended = self.mode.ended(self.prepared, self.outcome.text) if self.params.n == 1 else None
        if ended is not None:
            notices.append(ended)
        return notices

    def _shown(self) -> tuple[Shown, list[str]]:
        """What the record keeps: on a client's stop, only what reached the client."""
        whole = self.present(self.outcome.text)
        if self.outcome.finish_reason != "cancelled" or self.sent is None:
            return whole, []
        # Deltas are the generated part as the mode streams it, so they present like the raw text.
        sent = "".join(self.sent)
        unsent = len(whole.generated) - len(sent) if whole.generated.startswith(sent) else 0
        if unsent <= 0:
            return whole, []
        return self.present(sent), [f"{unsent} more characters were generated after the stop and are not kept."]

    def _weighed(self, raw: str, shown: Shown, track: TokenTrack) -> list[TokenInfo] | None:
        """The tokens behind the generated part of ``shown`` (cut from ``raw``); None if they cannot be had."""
        start = self.mode.offset(raw)
        if not track.complete or raw[start:start + len(shown.generated)] != shown.generated:
            return None
        return track.slice(start, start + len(shown.generated))

    def _candidates(self) -> list[Candidate]:
        out = []
        for candidate in self.outcome.candidates:
            shown = self.present(candidate.text)
            tokens = self._weighed(candidate.text, shown, candidate.track) or []
            out.append(Candidate(shown, candidate.finish_reason, tokens, mean_logprob=mean_logprob(tokens),
                                 attribution=self.playground.attribute(shown.generated)))
        return rank(out)

    def _probabilities(self, shown: Shown) -> tuple[Shown, Weighed, list[str]]:
        """What the record shows (the best candidate, when there are several), its tokens and
        candidates, and a notice when the engine's numbers could not be lined up with its text."""
        alternatives = self.params.logprobs > 0
        if self.params.n > 1 and self.outcome.candidates:
            ranked = self._candidates()
            best = ranked[0]
            self.outcome.finish_reason = best.finish_reason
            return best.shown, Weighed(best.tokens if alternatives else None, ranked), []
        if not alternatives:
            return shown, Weighed(), []
        tokens = self._weighed(self.outcome.text, shown, self.outcome.track)
        if tokens is None:
            return shown, Weighed(), ["The engine's token data did not line up with its text, so no probabilities "
                                      "are shown."]
        return shown, Weighed(tokens), []

    def _finish(self, info: BackendInfo) -> Generation:
        outcome = self.outcome
        shown, unsent_note = self._shown()
        shown, weighed, weighed_note = self._probabilities(shown)
        record = Generation(
            id=self.id,
            mode=self.mode.name,
            model=self.slot.spec.id,
            created_at=self.created_at,
            app_version=__version__,
            inputs=self.prepared.inputs,
            raw_prompt=self.raw_prompt,
            prompt_version=self.prepared.prompt_version,
            params=self.params,
            backend=_backend_summary(info),
            shown=shown,
            finish_reason=outcome.finish_reason,
            error=outcome.error,
            notices=self._notices() + unsent_note + weighed_note,
            budget=list(self.prepared.spent) or None,
            usage=Usage(outcome.prompt_tokens, outcome.completion_tokens),
            timings=Timings(None if outcome.ttft_ms is None else round(outcome.ttft_ms, 1),
                            round(outcome.total_ms, 1), outcome.tokens_per_s),
            # the generated part only; the best candidate's own check when there are several
            attribution=weighed.candidates[0].attribution if weighed.candidates else
            self.playground.attribute(shown.generated),
            tokens=weighed.tokens,
            candidates=weighed.candidates,
        )
        self.playground.finished(record)
        return record


@dataclass(frozen=True)
class Weighed:
    """What the model weighed, for the record: the shown text's tokens and the ranked candidates."""

    tokens: list[TokenInfo] | None = None
    candidates: list[Candidate] | None = None


LOOP_NOTICE = ("The model was stopped where it was writing the same text over and over; what it wrote keeps the "
               "first two copies. Try a temperature above 0, or turn off \"Stop at loops\" to let it run on.")
_GREEDY_ONE = ("With temperature 0 every candidate would be the same text, so one was generated. "
               "Raise the temperature for different candidates.")


def _backend_summary(info: BackendInfo) -> BackendSummary:
    return BackendSummary(info.backend, info.endpoint, info.dtype, info.quantization, info.revision,
                          (info.placement or {}).get("summary"))


class Playground:
    def __init__(self, settings: Settings, slots: Mapping[str, ModelSlot], chat_prompt: TechAssistantPrompt,
                 store: ShareStore | None = None, checks: AttributionCheck | None = None):
        if not slots:
            raise ConfigError("At least one model must be configured.")
        self.settings = settings
        self.slots = dict(slots)
        self.modes = Modes(chat_prompt)
        self.recent = RecentGenerations()  # this process's own, at hand even while the database is down
        self.store = store
        retention = settings.generation_retention_h
        # Every finished generation, in the database: any replica can share or read what another made.
        self.generations = None if store is None else GenerationLog(
            store, None if retention <= 0 else timedelta(hours=retention))
        self.checks = checks  # None: attribution is off
        self.metrics = Metrics(self.queue_depth)
        self.hash_id = IdHasher(settings.log_key)  # ids in logs are keyed hashes: an id grants access
        self._running: set[Run] = set()
        self._running_lock = threading.Lock()

    # -- models --
    @property
    def default_model(self) -> str:
        return next(iter(self.slots))

    def slot(self, model_id: object) -> ModelSlot:
        if model_id is not None and not isinstance(model_id, str):
            raise InputError("model must be a model id (text), as listed by GET /api/models.")
        slot = self.slots.get(model_id or self.default_model)
        if slot is None:
            raise UnknownModelError(f"Model {quoted(model_id)} is not served here. Available: {', '.join(self.slots)}.")
        return slot

    @property
    def generation_concurrency(self) -> int:
        """How many generations may run at once across all models; each slot still gates its own."""
        return sum(slot.concurrency for slot in self.slots.values())

    def queue_depth(self) -> int:
        return sum(slot.waiting for slot in self.slots.values())

    # -- generating --
    def plan(self, mode_name: object, model_id: object, inputs: Mapping[str, Any],
             raw_params: Mapping[str, Any] | None) -> Plan:
        """Validate, budget and build the prompt; raises InputError subclasses with user messages."""
        mode = self.modes.named(mode_name)
        inputs = mode.inputs.parse(inputs)
        slot = self.slot(model_id)
        backend = slot.require_backend()
        info = backend.info()
        params = GenerationParams.parse(raw_params, slot.spec.defaults).with_seed()
        if params.n > 1 and not mode.candidates:
            raise InvalidParameterError(f"Several candidates (n > 1) are for fill and complete; {mode.name} "
                                        "gives one reply. Set n to 1.")
        if info.max_new_tokens_limit is not None and params.max_new_tokens > info.max_new_tokens_limit:
            params = replace(params, max_new_tokens=info.max_new_tokens_limit)
        budget = plan_budget(info.context_length, params.max_new_tokens, info.max_input_tokens)

        def count(text: str) -> int:
            return backend.count_tokens(Prompt.of(text)) if text else 0

        prepared = mode.build(inputs, ModeContext(slot.spec, budget, count, params))
        stops = tuple(dict.fromkeys(params.stop + prepared.stops))
        if params.n > 1 and params.greedy:  # greedy decoding has one answer: n copies of it would tell nothing
            params = replace(params, n=1)
            prepared = replace(prepared, notices=(*prepared.notices, _GREEDY_ONE))
        return Plan(slot, mode, prepared, replace(params, max_new_tokens=prepared.reply_tokens, stop=stops))

    def start(self, mode_name: object, model_id: object, inputs: Mapping[str, Any],
              raw_params: Mapping[str, Any] | None = None) -> Run:
        return Run(self, self.plan(mode_name, model_id, inputs, raw_params))

    def attribute(self, text: str) -> Report | None:
        """The attribution report for generated text; None when the check is off. Never raises."""
        return None if self.checks is None else self.checks.check(text)

    def finished(self, record: Generation) -> None:
        self.recent.add(record)
        # Saved before the client hears of it, so nothing acknowledged is lost; with the database down it
        # still reaches the client, from this process's memory, and says so.
        if self.generations is not None and not self.generations.save(record):
            record.notices.append("Kept on this server only: the database could not be reached, so sharing it "
                                  "may fail on another server of this deployment.")
        self.metrics.observe(record)
        log_generation(record, include_prompt=self.settings.log_prompts, hasher=self.hash_id)

    def _still_running(self) -> bool:
        with self._running_lock:
            return bool(self._running)

    def track(self, run: Run, running: bool) -> None:
        with self._running_lock:
            (self._running.add if running else self._running.discard)(run)

    # -- sharing --
    def share(self, generation_id: object) -> CreatedShare:
        """Persist a generation this server made and still holds; clients never supply content.
        Sharing it again gives the same share (without its delete token, which was shown once)."""
        record = self.generation(generation_id)
        if record is None:
            raise ShareNotFoundError(
                "No finished generation has that id (it may have expired, or been made on a server with another "
                "database). Generate again, then share."
            )
        return self._store().create(record)

    def generation(self, generation_id: object) -> Generation | None:
        """A finished generation by id: this process's own, or any replica's from the database while it
        is kept. None when unknown or expired; StoreError when the database cannot be read."""
        record = self.recent.get(generation_id)
        if record is not None or self.generations is None or not isinstance(generation_id, str):
            return record
        if not 0 < len(generation_id) <= 64:
            return None
        return self.generations.get(generation_id, read=self.modes.read_record)

    def open_share(self, share_id: str) -> Generation:
        return self._store().get(share_id, read=self.modes.read_record)

    def delete_share(self, share_id: str, token: str | None) -> None:
        self._store().delete(share_id, token)

    def _store(self) -> ShareStore:
        if self.store is None:
            raise StoreError("Sharing is turned off on this server.")
        return self.store

    # -- shutting down --
    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop in-flight generations (each finishes its record) and close the store."""
        with self._running_lock:
            runs = list(self._running)
        log.info("Shutting down: stopping %d in-flight generation(s), then closing the share store", len(runs))
        for run in runs:
            run.stop()
        deadline = time.monotonic() + grace_s
        while self._still_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.store is not None:
            self.store.close()
        if self.checks is not None:
            self.checks.close()
        for slot in self.slots.values():
            if slot.backend is not None:
                slot.backend.close()
        log.info("Shut down cleanly")
