"""OpenAI-compatible completions (vLLM, SGLang, llama.cpp's server) for the shared remote driver.

``OpenAiProtocol`` uses the ``openai`` package against ``{endpoint}/v1/completions``, which
takes a raw prompt and so serves FIM as well as chat. The limits come from
``GET /v1/models``: vLLM adds ``max_model_len`` to each entry; where it is
missing the registry's context length is used. The request's ``model`` is the
name the server lists (vLLM refuses any other), unless one is given.

Knobs the OpenAI API lacks go where each engine takes them (``flavours``);
a field an engine refuses by name is dropped, retried once and never sent
again, and the record says which settings were not applied. The SDK's own
retries are off: the shared driver retries a 429 only before the first token.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai

from playground.backends.base import Alternative, Chunk, Event, Finished, FinishReason, TokenInfo
from playground.backends.flavours import GENERIC, LLAMA_CPP, completion_request, identify, not_applied_notice
from playground.backends.pump import EventSource, socket_of
from playground.backends.remote_common import RemoteBackend
from playground.backends.remote_errors import misconfigured
from playground.backends.remote_protocol import Link, get_json
from playground.backends.wire import RemoteLimits, Sampling
from playground.errors import PlaygroundError
from playground.registry import ModelSpec

logger = logging.getLogger(__name__)


def _finish(reason: str | None, stop_reason: Any) -> FinishReason:
    if reason == "length":
        return "length"
    # vLLM says which stop string matched; end-of-text leaves stop_reason empty. Engines that cannot
    # say are sent no stop strings (they are cut on our side), so their "stop" is the end of text.
    return "stop" if isinstance(stop_reason, str) else "eos"


_UNEXPECTED = re.compile(r"Unexpected fields in the request: \{([^}]*)\}")


_PINNED = re.compile(r"pinned to '([^']+)'")


def pinned_model(exc: openai.APIStatusError) -> str | None:
    """The model name ``transformers serve`` is pinned to, from its 400 for any other name."""
    body = exc.body if isinstance(exc.body, dict) else {}
    match = _PINNED.search(str(body.get("detail", ""))) if exc.status_code == 400 else None
    return match.group(1) if match else None


def refused_fields(exc: openai.APIStatusError) -> frozenset[str]:
    """Fields a 400/422 names as not accepted: ``transformers serve``'s "Unexpected fields" message,
    or pydantic's ``extra_forbidden`` errors in FastAPI's ``detail`` list."""
    if exc.status_code not in (400, 422):
        return frozenset()
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("detail")
    names: set[str] = set()
    if isinstance(detail, str) and (match := _UNEXPECTED.search(detail)):
        names |= {name.strip(" '\"") for name in match.group(1).split(",")}
    if isinstance(detail, list):
        names |= {str(e["loc"][-1]) for e in detail
                  if isinstance(e, dict) and e.get("type") == "extra_forbidden" and e.get("loc")}
    return frozenset(n for n in names if n)


class OpenAiProtocol:
    """Speaks to an OpenAI-compatible ``/v1/completions`` endpoint (an ``EngineProtocol``).

    The link's endpoint may end in ``/v1`` or not.
    """

    name = "openai"

    def __init__(
        self,
        link: Link,
        model_name: str | None = None,  # the server's name for the model; None: taken from /v1/models
        max_stop_sequences: int = 4,  # the OpenAI API's limit; vLLM takes more, but the client cuts anyway
    ):
        self.link = link
        self.api_base = link.endpoint if link.endpoint.endswith("/v1") else link.endpoint + "/v1"
        self.model_name = model_name
        self.stop_limit = max_stop_sequences
        self.flavour = GENERIC
        self._client: openai.OpenAI | None = None
        self._client_lock = threading.Lock()
        self._refused: frozenset[str] = frozenset()  # fields this engine turned down once: never sent again
        self._pinned: str | None = None  # the model name a single-model engine insisted on
        self._listed: str | None = None  # the model name the engine listed when its limits were last read
        self._counted: dict[str, int] = {}  # the engine's token counts, by text
        self._tokenize_failed = False
        self._identified = False  # the engine's flavour is read once, not on every probe

    # -- limits --
    def read_limits(self) -> RemoteLimits:
        listing = get_json(self.link, f"{self.api_base}/models", allow_missing=True)
        entries = [e for e in (listing or {}).get("data", []) if isinstance(e, dict) and "id" in e]
        entry = self._pick(entries)
        if not self._identified:
            self.flavour, self._identified = identify(self._openapi(), entries), True
        total = int(entry.get("max_model_len") or self.link.spec.context_length)
        self._listed = self.model_name or entry.get("id") or self.link.spec.source
        return RemoteLimits(
            max_total_tokens=total,
            max_input_tokens=max(1, total - 1),
            max_new_tokens=max(1, total - 1),
            max_stop_sequences=self.stop_limit,
            server_model=self._listed,
            flavour=self.flavour.name,
            extra={"served_models": [e["id"] for e in entries]},
        )

    def _openapi(self) -> Any:
        """The server's OpenAPI document, read once to tell which engine it is; None if it has none.
        It only sharpens what is sent, so a server that answers it badly is served as a generic one."""
        root = self.api_base.removesuffix("/v1")
        try:
            return get_json(self.link, f"{root}/openapi.json", allow_missing=True)
        except PlaygroundError as exc:
            logger.info("%s: no usable /openapi.json (%s); treating it as a generic engine", self.link.endpoint,
                        exc.message)
            return None

    def _pick(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not entries:
            return {}  # no listing (or an empty one): the registry entry and model_name decide
        spec = self.link.spec
        wanted = [self.model_name] if self.model_name else [spec.source, spec.id]
        for name in wanted:
            for entry in entries:
                if entry["id"] == name:
                    return entry
        if self.model_name:
            served = ", ".join(e["id"] for e in entries)
            raise misconfigured(self.link.endpoint, f"serves {served}, not {self.model_name}; fix the model name")
        return entries[0]

    # -- what the driver asks --
    @property
    def native_candidates(self) -> bool:
        return self.flavour.takes_n

    @property
    def start_constraint(self) -> str | None:
        return self.flavour.start_constraint_name if self.flavour.start_constraint is not None else None

    @property
    def samples_at_once(self) -> bool:
        return self.flavour.generation_config is None  # transformers serve: one process-wide seed

    @property
    def counts_exactly(self) -> bool:
        return self.flavour.tokenize is not None and not self._tokenize_failed

    def client(self) -> openai.OpenAI:
        with self._client_lock:
            if self._client is None:
                self._client = openai.OpenAI(
                    base_url=self.api_base,
                    # An explicit placeholder: never pick up OPENAI_API_KEY for an unrelated server.
                    api_key=self.link.token or "not-needed",
                    max_retries=0,
                    timeout=self.link.read_backstop_s,
                    http_client=self.link.http,
                    # A cancelled stream's socket is shut down: it must not be a pooled one.
                    default_headers={"Connection": "close"},
                )
            return self._client

    def close(self) -> None:
        self._client = None  # it only borrows the link's HTTP client, which the backend closes

    def source(self, text: str, wanted: Sampling, limits: RemoteLimits) -> EventSource:
        client = self.client()

        def events(register: Callable[[Any], None]) -> Iterator[Event]:
            request = completion_request(wanted, self.flavour, self._refused)
            try:
                stream = client.completions.create(model=self._model(limits), prompt=text, stream=True,
                                                   **request.kwargs)
            except openai.APIStatusError as exc:
                if not self._learn(exc):
                    raise
                request = completion_request(wanted, self.flavour, self._refused)
                stream = client.completions.create(model=self._model(limits), prompt=text, stream=True,
                                                   **request.kwargs)
            notices = (not_applied_notice(request.not_applied, self.flavour.name),) if request.not_applied else ()
            try:
                register(socket_of(stream.response))
                yield from self._relay(stream, notices, wanted)
            finally:
                stream.close()

        return events

    def count(self, text: str) -> int | None:
        """Exact counts from the engine's tokenize route (llama.cpp's ``/extras/tokenize``, vLLM's
        ``/tokenize``), remembered per text; None, and never asked again, if the route fails."""
        if not self.counts_exactly or self.flavour.tokenize is None:
            return None
        cached = self._counted.get(text)  # one read: another thread may clear the cache meanwhile
        if cached is not None:
            return cached
        root = self.api_base.removesuffix("/v1")
        model = self._pinned or self._listed or self.link.spec.source
        body = {"input": text} if self.flavour is LLAMA_CPP else {"model": model, "prompt": text}
        try:
            response = self.link.http.post(root + self.flavour.tokenize, json=body, headers=self.link.auth,
                                           timeout=self.link.timeouts.connect_s)
            tokens = response.json()["tokens"] if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError, KeyError, TypeError):
            tokens = None
        if not isinstance(tokens, list):
            logger.info("%s has no working tokenize route; token counts will be estimated", self.link.endpoint)
            self._tokenize_failed = True
            return None
        if len(self._counted) > 4096:  # bounded: a fill counts each line of the code once
            self._counted.clear()
        self._counted[text] = len(tokens)
        return len(tokens)

    def _model(self, limits: RemoteLimits) -> str:
        return self._pinned or limits.server_model or self.link.spec.source

    def _learn(self, exc: openai.APIStatusError) -> bool:
        """What a refusal teaches, kept for every later request: fields the engine does not take, or the
        one model name it serves. True when there is something to retry with."""
        refused = refused_fields(exc)
        pinned = pinned_model(exc)
        if refused:
            logger.info("%s refused %s; retrying without them", self.link.endpoint, sorted(refused))
            self._refused |= refused
        if pinned and pinned != self._pinned:
            logger.info("%s serves only %r; retrying with that name", self.link.endpoint, pinned)
            self._pinned = pinned
            return True
        return bool(refused)

    def _relay(self, stream: Any, notices: tuple[str, ...], wanted: Sampling) -> Iterator[Event]:
        finishes: dict[int, FinishReason] = {}
        usage = None
        weighed = False
        for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.text or not choice.finish_reason:  # the last, empty chunk is framing, not a token
                    details = _details(choice.logprobs, wanted.logprobs) if wanted.weigh else ()
                    weighed = weighed or bool(details)
                    yield Chunk(choice.text or "", details=details, index=choice.index or 0)
                if choice.finish_reason:
                    finishes[choice.index or 0] = _finish(choice.finish_reason, getattr(choice, "stop_reason", None))
        if finishes:  # [DONE] or not, the engine said it finished
            if wanted.weigh and not weighed and "logprobs" not in self._refused:
                notices = (*notices, f"The engine ({self.flavour.name}) sent no token probabilities.")
            reasons = tuple(finishes.get(i, "error") for i in range(wanted.n)) if wanted.n > 1 else ()
            prompt, made = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
            yield Finished(finishes.get(0, "error"), prompt, made, notices=notices, reasons=reasons)


def _details(logprobs: Any, alternatives: int) -> tuple[TokenInfo, ...]:
    """The legacy completions ``logprobs`` of one chunk as tokens; () when the engine sent none.
    Engines list the sampled token among the top entries besides the k best: the k best are kept."""
    if logprobs is None or not getattr(logprobs, "tokens", None):
        return ()
    tops = getattr(logprobs, "top_logprobs", None) or [None] * len(logprobs.tokens)
    out = []
    for text, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs or (), tops, strict=False):
        if logprob is None:
            continue
        ranked = sorted((top or {}).items(), key=lambda item: -item[1])[:alternatives]
        out.append(TokenInfo(text, float(logprob), tuple(Alternative(t, float(lp)) for t, lp in ranked)))
    return tuple(out)


class OpenAiCompletionsBackend(RemoteBackend):
    """A model behind an OpenAI-compatible ``/v1/completions`` endpoint; ``model_name`` and
    ``max_stop_sequences`` as ``OpenAiProtocol``'s, the other options as ``RemoteBackend``'s."""

    def __init__(self, spec: ModelSpec, endpoint: str, *, model_name: str | None = None,
                 max_stop_sequences: int = 4, **options: Any):
        super().__init__(spec, endpoint, lambda link: OpenAiProtocol(link, model_name, max_stop_sequences),
                         **options)
