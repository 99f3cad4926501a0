"""The text-generation-inference backend, through ``huggingface_hub.InferenceClient``.

``InferenceClient(base_url=URL).text_generation(..., stream=True)`` POSTs
``{"inputs", "parameters", "stream": true}`` to the base URL itself (TGI's
``POST /``, which answers like ``/generate_stream``). The limits come from a
plain ``GET /info``: the client's ``get_endpoint_info()`` refuses a bare URL.

TGI's rules (0 < top_p < 1, temperature > 0, at most ``max_stop_sequences``
stops, prompt + ``max_new_tokens`` <= ``max_total_tokens``) are met here, so a
valid request from the playground is a valid request for the engine. The
server's ``truncate`` is never used: it keeps the *last* tokens and would cut
``<fim_prefix>``; trimming is the prompting layer's job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
from huggingface_hub import InferenceClient
from huggingface_hub.errors import (
    GenerationError,
    HfHubHTTPError,
    IncompleteGenerationError,
    InferenceTimeoutError,
    OverloadedError,
    UnknownError,
    ValidationError,
)
from huggingface_hub.utils import hf_raise_for_status

from playground.backends.base import FinishReason
from playground.backends.remote_common import (
    Delta,
    Done,
    EventSource,
    RemoteBackend,
    RemoteEvent,
    RemoteLimits,
    clamp_max_new_tokens,
    get_json,
    socket_of,
)
from playground.backends.remote_errors import (
    busy,
    generation_failed,
    misconfigured,
    rejected,
    status_error,
    unavailable,
)
from playground.errors import BackendTimeoutError, PlaygroundError
from playground.params import GenerationParams
from playground.registry import ModelSpec

logger = logging.getLogger(__name__)

_FINISH: dict[str, FinishReason] = {"length": "length", "eos_token": "eos", "stop_sequence": "stop"}
# TGI's message when prompt + max_new_tokens is over max_total_tokens; it gives its exact prompt count.
_OVER_TOTAL = re.compile(r"must be <= (\d+)\. Given: (\d+) `inputs` tokens")


def limits_from_info(info: dict[str, Any], spec: ModelSpec) -> RemoteLimits:
    """TGI's ``/info``; versions before 2.0 call the input limit ``max_input_length``."""
    total = int(info.get("max_total_tokens") or spec.context_length)
    max_input = int(info.get("max_input_tokens") or info.get("max_input_length") or total - 1)
    return RemoteLimits(
        max_total_tokens=total,
        max_input_tokens=max_input,
        max_new_tokens=max(1, total - 1),  # TGI has no separate cap: the total is the limit
        max_stop_sequences=int(info.get("max_stop_sequences", 4)),
        server_model=info.get("model_id"),
        version=info.get("version"),
        extra={"max_concurrent_requests": info.get("max_concurrent_requests")},
    )


def tgi_parameters(params: GenerationParams, limits: RemoteLimits, prompt_tokens: int) -> dict[str, Any]:
    """Keyword arguments for ``text_generation``, inside TGI's validation rules.

    Greedy (temperature 0) sends ``do_sample=False`` and no sampling knobs: TGI
    refuses temperature 0 and turns sampling on when any warper is present.
    ``max_new_tokens`` is always sent; without it TGI runs to the full context.
    """
    out: dict[str, Any] = {"max_new_tokens": clamp_max_new_tokens(params.max_new_tokens, prompt_tokens, limits)}
    if params.greedy:
        out["do_sample"] = False
    else:
        out["do_sample"] = True
        out["temperature"] = params.temperature
        if 0 < params.top_p < 1:
            out["top_p"] = params.top_p
        if params.top_k > 0:
            out["top_k"] = params.top_k
        if params.seed is not None:
            out["seed"] = params.seed
    if params.repetition_penalty != 1:
        out["repetition_penalty"] = params.repetition_penalty
    # The streaming layer cuts every stop sequence client-side; the server gets
    # as many as it allows so it stops generating early.
    stops = list(params.stop[: limits.max_stop_sequences])
    if stops:
        out["stop"] = stops
    return out


class _EngineClient(InferenceClient):
    """``InferenceClient`` sending through its own HTTP client instead of the hub's session.

    Two reasons. The hub's shared session refuses every request while
    ``HF_HUB_OFFLINE=1``, which is about the Hub, not a user's own engine. And
    a cancel needs the open response, to shut its socket. Request building,
    SSE parsing and TGI's error types stay the hub's; this only replaces the
    transport step (``_inner_post``, mirrored from huggingface_hub 2.x).
    """

    def __init__(self, http: httpx2.Client, **kwargs: Any):
        super().__init__(**kwargs)
        self._http = http
        self.response: httpx2.Response | None = None

    def _inner_post(self, request_parameters: Any, *, stream: bool = False) -> Any:
        try:
            response = self.exit_stack.enter_context(
                self._http.stream(
                    "POST",
                    request_parameters.url,
                    json=request_parameters.json,
                    content=request_parameters.data,
                    headers=request_parameters.headers,
                    timeout=self.timeout,
                )
            )
            self.response = response
            hf_raise_for_status(response)  # reads the error body; the hub then parses TGI's error_type
            return response.iter_lines() if stream else response.read()
        except httpx2.TimeoutException as error:
            raise InferenceTimeoutError(f"Inference call timed out: {request_parameters.url}") from error


class TgiBackend(RemoteBackend):
    """A model served by text-generation-inference at ``endpoint``.

    Constructor: ``TgiBackend(spec, endpoint, *, token=None, first_token_timeout_s=60,
    idle_timeout_s=30, connect_timeout_s=10, concurrency=16, busy_retries=2,
    retry_backoff_s=(0.2, 0.6), connect=True)``; see ``RemoteBackend``.
    """

    backend_name = "tgi"

    def __init__(self, spec: ModelSpec, endpoint: str, **kwargs: Any):
        # One HTTP client per backend, shared by its concurrent streams (thread-safe).
        self._http = httpx2.Client(follow_redirects=False, timeout=None)
        super().__init__(spec, endpoint, **kwargs)

    def _read_limits(self) -> RemoteLimits:
        info = get_json(f"{self.endpoint}/info", self.token, self.connect_timeout_s)
        if not isinstance(info, dict) or "max_total_tokens" not in info:
            raise misconfigured(self.endpoint, "does not answer /info like text-generation-inference")
        return limits_from_info(info, self.spec)

    def _engine_client(self) -> _EngineClient:
        # Connection: close - a cancelled stream's socket is shut down, so it must
        # never be a pooled one another request could pick up.
        headers = {"Connection": "close"}
        if self.token is None:
            # Without this the hub client would send the machine's own HF token
            # to whatever URL the endpoint is.
            headers["Authorization"] = ""
        return _EngineClient(
            self._http, base_url=self.endpoint, timeout=self.read_backstop_s, token=self.token, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    def _source(self, text: str, params: GenerationParams, limits: RemoteLimits, prompt_tokens: int) -> EventSource:
        parameters = tgi_parameters(params, limits, prompt_tokens)

        def events(register: Callable[[Any], None]) -> Iterator[RemoteEvent]:
            client = self._engine_client()
            try:
                yield from self._events(client, text, parameters, limits, register)
            finally:
                client.close()

        return events

    def _events(
        self,
        client: _EngineClient,
        text: str,
        parameters: dict[str, Any],
        limits: RemoteLimits,
        register: Callable[[Any], None],
    ) -> Iterator[RemoteEvent]:
        for attempt in (1, 2):
            got_token = False
            try:
                stream = client.text_generation(text, stream=True, details=True, **parameters)
                register(socket_of(client.response))
                for output in stream:
                    got_token = True
                    token = output.token
                    yield Delta("" if token.special else token.text)
                    if output.details is not None:
                        details = output.details
                        reason = _FINISH.get(str(details.finish_reason), "eos")
                        yield Done(reason, details.generated_tokens, getattr(details, "input_length", None))
                        return
                return  # no final event: the driver reports a truncated stream
            except (ValidationError, HfHubHTTPError) as exc:
                refit = _refit(str(exc), parameters, limits) if attempt == 1 and not got_token else None
                if refit is None:
                    raise
                logger.info("TGI counted more prompt tokens than estimated; retrying with %s", refit)
                parameters = refit

    def _classify(self, exc: BaseException) -> PlaygroundError:
        if isinstance(exc, PlaygroundError):
            return exc
        detail = _tgi_detail(exc)
        if isinstance(exc, ValidationError):
            return rejected(detail)
        if isinstance(exc, OverloadedError):
            return busy()
        if isinstance(exc, (GenerationError, IncompleteGenerationError, UnknownError)):
            return generation_failed(detail)
        if isinstance(exc, (InferenceTimeoutError, httpx2.TimeoutException)):
            return BackendTimeoutError(f"The model server at {self.endpoint} did not answer in time. Try again.")
        status = _status_of(exc)
        if status is not None:
            return status_error(self.endpoint, status, detail)
        if isinstance(exc, httpx2.ConnectError):
            return unavailable(self.endpoint, "connection refused or host unknown")
        if isinstance(exc, (httpx2.TransportError, OSError)):
            return self.truncated_error()
        logger.error("unexpected error from TGI at %s", self.endpoint, exc_info=exc)
        return generation_failed(f"unexpected {type(exc).__name__}")


def _refit(message: str, parameters: dict[str, Any], limits: RemoteLimits) -> dict[str, Any] | None:
    """Parameters that fit TGI's exact prompt count, when it refused our estimate."""
    match = _OVER_TOTAL.search(message)
    if not match:
        return None
    room = int(match.group(1)) - int(match.group(2))
    if room < 1 or room >= parameters["max_new_tokens"]:
        return None
    return {**parameters, "max_new_tokens": room}


def _status_of(exc: BaseException) -> int | None:
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _tgi_detail(exc: BaseException) -> str:
    """TGI's own error text (``{"error": ...}``), without the hub's prefix."""
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        try:
            body = response.json() if response is not None else None
        except Exception:  # noqa: BLE001 - not JSON: fall back to the exception text
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
