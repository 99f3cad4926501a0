"""The one remote backend: limits, clamping, the stream driver with its timeouts,
retries and cancellation, and error messages, for any engine protocol.

``RemoteBackend`` holds an ``EngineProtocol`` (``remote_protocol``): TGI's or
the OpenAI-compatible one. The protocol says how to read the engine's limits
and how to open one streaming request, as a generator of the base
``Chunk``/``Finished`` events run in a worker thread;
``remote_errors.classify`` translates the client libraries' exceptions.
``RemoteBackend.stream`` does the rest:

* the worker thread pushes events to a queue; the caller's thread polls it, so
  a stalled server cannot block cancellation (a blocked socket read cannot
  check a flag). On cancel, timeout or an abandoned generator the socket is
  shut down, which wakes the worker and tells the engine to drop the request
  from its batch;
* the idle timeout counts time between *tokens*: TGI's keep-alive comments
  (every 15 s) keep bytes flowing on a stuck stream and must not reset it;
* a 429 is retried at most ``busy_retries`` times, with jitter, and only
  before any token arrived; later failures end the stream with
  ``Finished(reason="error")`` so the partial text is kept.

The HTTP client is injected (one ``httpx2.Client`` per backend, shared by its
streams), so a test can hand in one on an ``httpx2.MockTransport``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import replace

import httpx2

from playground.backends.base import BackendInfo, Chunk, Event, EventStream, Finished
from playground.backends.candidates import fan_out
from playground.backends.pump import Pump
from playground.backends.remote_errors import classify, truncated, unavailable
from playground.backends.remote_healing import (
    engine_stops,
    healed_notice,
    unhealed_notice,
    with_notice,
    without_healed,
)
from playground.backends.remote_protocol import EngineProtocol, Link
from playground.backends.tokens import ESTIMATED_NOTICE, count_with, local_tokenizer
from playground.backends.wire import RemoteLimits, Sampling, estimate_tokens, sampling
from playground.config_types import RemoteTimeouts
from playground.errors import (
    BackendBusyError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    GenerationFailedError,
    PlaygroundError,
)
from playground.params import GenerationParams
from playground.prompt import Prompt
from playground.registry import ModelSpec

logger = logging.getLogger(__name__)

_POLL_S = 0.1  # how often a waiting stream looks at the cancel flag and its deadlines


# -- the backend ---------------------------------------------------------------------


class RemoteBackend:
    """A model served by a remote engine that ``protocol`` speaks to."""

    _RETRY = object()

    def __init__(
        self,
        spec: ModelSpec,
        endpoint: str,
        protocol: Callable[[Link], EngineProtocol],  # e.g. TgiProtocol: made once the link is set up
        *,
        token: str | None = None,
        timeouts: RemoteTimeouts = RemoteTimeouts(),
        concurrency: int = 16,  # users served at once; the engine batches them
        busy_retries: int = 2,  # 429s retried before the first token
        retry_backoff_s: tuple[float, float] = (0.2, 0.6),  # jittered pause before a retry
        http: httpx2.Client | None = None,  # injected in tests; by default one per backend
        connect: bool = True,  # read the limits now (never raises; see info().loaded)
    ):
        if not endpoint.startswith(("http://", "https://")):
            raise BackendUnavailableError(f"The endpoint {endpoint!r} must be an http:// or https:// URL.")
        self.spec = spec
        self.endpoint = endpoint.rstrip("/")
        self.timeouts = timeouts
        self.concurrency = concurrency
        self.busy_retries = busy_retries
        self.retry_backoff_s = retry_backoff_s
        self.link = Link(
            spec=spec, endpoint=self.endpoint, token=token or None, timeouts=timeouts,
            # Never follows a redirect elsewhere: the token must not travel to another host.
            http=http or httpx2.Client(follow_redirects=False, timeout=None),
            read_backstop_s=max(timeouts.first_token_s, timeouts.idle_s) + 5.0,
        )
        self.protocol = protocol(self.link)
        self.backend_name = self.protocol.name
        self._limits: RemoteLimits | None = None
        self._stale = True  # re-read the limits before the next request
        self._last_error: PlaygroundError | None = None
        self._limits_lock = threading.Lock()
        self._probe_stop = threading.Event()
        self._tokenizer = local_tokenizer(spec)
        if connect:
            self.connect()

    def start_probe(self, interval_s: float = 5.0) -> None:
        """Re-read the engine's limits every ``interval_s`` in the background, so that health and the
        model list say now whether the engine is reachable, not as of the last request."""
        def probe() -> None:
            while not self._probe_stop.wait(interval_s):
                self.connect()

        threading.Thread(target=probe, name=f"{self.backend_name}-probe", daemon=True).start()

    def _classify(self, exc: BaseException) -> PlaygroundError:
        error = classify(exc, self.endpoint)
        if not isinstance(exc, PlaygroundError):
            logger.info("%s at %s: %s -> %s", self.backend_name, self.endpoint, type(exc).__name__, error.kind,
                        exc_info=isinstance(error, GenerationFailedError))
        return error

    # -- limits --
    def connect(self) -> bool:
        """(Re)read the engine's limits. Returns whether the engine answered.

        The HTTP calls run outside the lock, so a slow engine never holds up requests that only need
        the limits already known; the result is swapped in under it.
        """
        try:
            limits = self.protocol.read_limits()
        except PlaygroundError as exc:
            with self._limits_lock:
                self._last_error = exc
                self._stale = True  # unreachable now: health says so, and the next request tries again
            logger.warning("%s endpoint %s: %s", self.backend_name, self.endpoint, exc.message)
            return False
        with self._limits_lock:
            self._limits, self._stale, self._last_error = limits, False, None
        return True

    def _require_limits(self) -> RemoteLimits:
        if self._stale or self._limits is None:
            self.connect()
        if self._limits is None or self._stale:
            raise self._last_error or unavailable(self.endpoint, "no answer")
        return self._limits

    def info(self) -> BackendInfo:
        limits = self._limits
        return BackendInfo(
            model_id=self.spec.id,
            backend=self.backend_name,
            context_length=limits.max_total_tokens if limits else self.spec.context_length,
            loaded=limits is not None and not self._stale,
            revision=self.spec.revision,
            endpoint=self.endpoint,
            max_input_tokens=limits.max_input_tokens if limits else None,
            max_new_tokens_limit=limits.max_new_tokens if limits else None,
            max_stop_sequences=limits.max_stop_sequences if limits else None,
            concurrency=self.concurrency,
            flavour=limits.flavour if limits else None,
            extra={
                "server_model": limits.server_model if limits else None,
                "server_version": limits.version if limits else None,
                "last_error": self._last_error.message if self._last_error else None,
                **((limits.extra or {}) if limits else {}),
            },
        )

    @property
    def exact_counts(self) -> bool:
        return self._tokenizer is not None or self.protocol.counts_exactly

    def count_tokens(self, prompt: Prompt) -> int:
        if self._tokenizer is not None:
            return count_with(self._tokenizer, self.render(prompt))
        exact = self.protocol.count(self.render(prompt))
        return exact if exact is not None else estimate_tokens(prompt, self.spec)

    def render(self, prompt: Prompt) -> str:
        # The engine tokenizes the text itself, so special-token spellings the user typed are broken.
        return prompt.render_for_remote(self.spec.special_tokens())

    def close(self) -> None:
        self._probe_stop.set()
        self.protocol.close()
        self.link.http.close()  # the backend's own client, which the protocol only borrows

    # -- streaming --
    def stream(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> EventStream:
        if params.n > 1 and not self.protocol.native_candidates:
            weigh = params.wants_logprobs  # each request makes one, but its score ranks it
            yield from fan_out(lambda one: self._stream_one(prompt, one, cancel, weigh), params, cancel,
                               at_once=self.protocol.samples_at_once)
        else:
            yield from self._stream_one(prompt, params, cancel)

    def _stream_one(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event,
                    weigh: bool | None = None) -> EventStream:
        """One request, token-healed where the prompt ends on a break and the engine can be constrained
        (``remote_healing``)."""
        limits = self._require_limits()
        prompt_tokens = self.count_tokens(prompt)
        request = sampling(params, limits, prompt_tokens, weigh)
        healed = prompt.trailing_break() if params.heal else ""
        how = self.protocol.start_constraint
        if not healed:
            yield from self._attempts(self.render(prompt), request, limits, cancel, prompt_tokens)
        elif how is None:
            events = self._attempts(self.render(prompt), request, limits, cancel, prompt_tokens)
            yield from with_notice(events, unhealed_notice(limits.flavour or self.backend_name))
        else:
            text = self.render(prompt.taking_back(len(healed)))
            healing = replace(request, starts_with=healed, stop=engine_stops(request.stop, healed))
            events = self._attempts(text, healing, limits, cancel, prompt_tokens)
            yield from without_healed(events, healed, healed_notice(healed, how))

    def _attempts(self, text: str, request: Sampling, limits: RemoteLimits, cancel: threading.Event,
                  prompt_tokens: int) -> EventStream:
        """The request's events, asked again after a busy engine's 429 (within ``busy_retries``)."""
        source = self.protocol.source(text, request, limits)
        retries = 0
        while True:
            if cancel.is_set():
                yield Finished("cancelled", prompt_tokens, 0)
                return
            pump = Pump(source, name=f"{self.backend_name}-stream")
            try:
                outcome = yield from self._consume(pump, cancel, prompt_tokens, retries < self.busy_retries)
            finally:
                pump.close()  # also when the caller abandons the generator
            if outcome is not self._RETRY:
                return
            retries += 1
            if cancel.wait(random.uniform(*self.retry_backoff_s)):
                yield Finished("cancelled", prompt_tokens, 0)
                return

    def _consume(
        self, pump: Pump, cancel: threading.Event, prompt_tokens: int, may_retry: bool
    ) -> Generator[Event, None, object]:
        """Relay one attempt's events; returns ``_RETRY`` when a 429 should be retried."""
        started = time.monotonic()
        last_token: float | None = None
        completion = 0
        yielded = False  # a Chunk went out: from now on failures end with Finished
        while True:
            if cancel.is_set():
                yield Finished("cancelled", prompt_tokens, completion)
                return None
            now = time.monotonic()
            deadline = (started + self.timeouts.first_token_s if last_token is None
                        else last_token + self.timeouts.idle_s)
            if now >= deadline:
                yield self._failed(self._timeout_error(last_token is None), yielded, prompt_tokens, completion)
                return None
            item = pump.get(min(_POLL_S, deadline - now))
            if item is None:
                continue
            kind, value = item
            if kind == "event" and isinstance(value, Chunk):
                last_token = time.monotonic()
                completion += value.tokens
                if value.text:
                    yielded = True
                    yield value
            elif kind == "event":
                yield self._finished(value, prompt_tokens, completion)
                return None
            elif kind == "end":
                yield self._failed(truncated(self.endpoint), yielded, prompt_tokens, completion)
                return None
            else:
                error = self._classify(value)
                if isinstance(error, BackendUnavailableError):
                    self._stale = True  # re-read the limits before the next request
                    self._last_error = error
                if not yielded and isinstance(error, BackendBusyError) and last_token is None and may_retry:
                    return self._RETRY
                yield self._failed(error, yielded, prompt_tokens, completion)
                return None

    def _failed(self, error: PlaygroundError, yielded: bool, prompt_tokens: int, completion: int) -> Finished:
        """A failure before any text is raised (nothing was shown); after, it ends the stream, keeping the text."""
        if not yielded:
            raise error
        return Finished("error", prompt_tokens, completion, self._interrupted(completion, error))

    def _finished(self, engine: Finished, prompt_tokens: int, completion: int) -> Finished:
        """The engine's ending with our counts where it sent none, and what the record should say."""
        prompt = engine.prompt_tokens or prompt_tokens
        made = engine.completion_tokens if engine.completion_tokens is not None else completion
        notices = list(engine.notices)
        if not self.exact_counts and engine.prompt_tokens is None:
            notices.append(ESTIMATED_NOTICE)
        total = self._limits.max_total_tokens if self._limits else self.spec.context_length
        if engine.reason == "length" and prompt + made >= total:
            notices.append(f"The reply reached the end of the model's context: {prompt} prompt + {made} reply "
                           f"tokens = {total}.")
        return Finished(engine.reason, prompt, made, engine.error, tuple(notices), engine.reasons)

    def _timeout_error(self, first: bool) -> BackendTimeoutError:
        if first:
            return BackendTimeoutError(
                f"The model server at {self.endpoint} sent no tokens within {self.timeouts.first_token_s:g} s. "
                "It may be overloaded or stuck; try again in a moment."
            )
        return BackendTimeoutError(
            f"The model server at {self.endpoint} stopped sending tokens for {self.timeouts.idle_s:g} s."
        )

    @staticmethod
    def _interrupted(tokens: int, error: BackendError | PlaygroundError) -> str:
        return f"The output was interrupted after {tokens} tokens and is incomplete. {error.message}"
