"""Text-generation-inference for the shared remote driver (``TgiProtocol``), through ``InferenceClient``.

``InferenceClient(base_url=URL).text_generation(..., stream=True)`` POSTs
``{"inputs", "parameters", "stream": true}`` to the base URL itself (TGI's
``POST /``, which answers like ``/generate_stream``). The limits come from a
plain ``GET /info``: the client's ``get_endpoint_info()`` refuses a bare URL.

TGI's rules (a nucleus below 1, a temperature above 0, at most
``max_stop_sequences`` stops, prompt + ``max_new_tokens`` <=
``max_total_tokens``) are met here, so a
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
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, ValidationError
from huggingface_hub.utils import hf_raise_for_status  # type: ignore[attr-defined]  # public, not re-exported

from playground.backends.base import Alternative, Chunk, Event, Finished, FinishReason, TokenInfo
from playground.backends.pump import EventSource, socket_of
from playground.backends.remote_common import RemoteBackend
from playground.backends.remote_errors import misconfigured
from playground.backends.remote_protocol import Link, get_json
from playground.backends.wire import RemoteLimits, Sampling, tgi_parameters
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


class TgiProtocol:
    """Speaks to text-generation-inference at the link's endpoint (an ``EngineProtocol``)."""

    name = "tgi"
    counts_exactly = False  # not asked: counts come from the model's tokenizer file, or are estimated
    native_candidates = False  # TGI makes one text per request
    samples_at_once = True  # its seeds are per request
    start_constraint = "grammar, regex"  # guidance: TGI compiles the regex against its tokenizer

    def __init__(self, link: Link):
        self.link = link

    def read_limits(self) -> RemoteLimits:
        endpoint = self.link.endpoint
        info = get_json(self.link, f"{endpoint}/info")
        if not isinstance(info, dict) or "max_total_tokens" not in info:
            raise misconfigured(endpoint, "does not answer /info like text-generation-inference")
        return limits_from_info(info, self.link.spec)

    def count(self, text: str) -> int | None:
        return None

    def close(self) -> None:
        pass  # each request's client is closed with its stream

    def _engine_client(self) -> _EngineClient:
        # Connection: close - a cancelled stream's socket is shut down, so it must
        # never be a pooled one another request could pick up.
        headers = {"Connection": "close"}
        if self.link.token is None:
            # Without this the hub client would send the machine's own HF token
            # to whatever URL the endpoint is.
            headers["Authorization"] = ""
        return _EngineClient(self.link.http, base_url=self.link.endpoint, timeout=self.link.read_backstop_s,
                             token=self.link.token, headers=headers)

    def source(self, text: str, request: Sampling, limits: RemoteLimits) -> EventSource:
        def events(register: Callable[[Any], None]) -> Iterator[Event]:
            client = self._engine_client()
            try:
                yield from _events(client, text, request, limits, register)
            finally:
                client.close()  # type: ignore[no-untyped-call]

        return events


class TgiBackend(RemoteBackend):
    """A model served by text-generation-inference at ``endpoint``; options as ``RemoteBackend``'s."""

    def __init__(self, spec: ModelSpec, endpoint: str, **options: Any):
        super().__init__(spec, endpoint, TgiProtocol, **options)


def _events(client: _EngineClient, text: str, request: Sampling, limits: RemoteLimits,
            register: Callable[[Any], None]) -> Iterator[Event]:
    """One generation's events; a refusal TGI explains (too many tokens, too many alternatives) is
    asked again once, within the limit its message gives."""
    parameters = tgi_parameters(request)
    notices: tuple[str, ...] = ()
    for attempt in (1, 2):
        got_token = False
        try:
            stream = client.text_generation(text, stream=True, details=True, **parameters)
            register(socket_of(client.response))
            for output in stream:
                got_token = True
                yield _chunk(output, request)
                if output.details is not None:
                    details = output.details
                    reason = _FINISH.get(str(details.finish_reason), "eos")
                    yield Finished(reason, getattr(details, "input_length", None), details.generated_tokens,
                                   notices=notices)
                    return
            return  # no final event: the driver reports a truncated stream
        except (ValidationError, HfHubHTTPError) as exc:
            refit = _refit(str(exc), parameters, limits) if attempt == 1 and not got_token else None
            if refit is None and attempt == 1 and "top_n_tokens" in str(exc):
                # A server started with a lower --max-top-n-tokens: its own limit is in the message.
                refit = _fewer_alternatives(str(exc), parameters)
                notices = (f"The engine gives at most {refit.get('top_n_tokens', 0)} alternatives per token; "
                           "that many are shown.",) if refit is not None else ()
            if refit is None:
                raise
            logger.info("TGI refused the request as sent (%s); retrying with %s", exc, refit)
            parameters = refit


def _chunk(output: Any, request: Sampling) -> Chunk:
    """One stream event as a Chunk; special tokens (the end of text) have no text and are not listed."""
    token = output.token
    if token.special:
        return Chunk("")
    if not request.weigh:
        return Chunk(token.text)
    top = tuple(Alternative(t.text, t.logprob) for t in (output.top_tokens or ()))
    return Chunk(token.text, details=(TokenInfo(token.text, token.logprob, top),))


_TOP_N_LIMIT = re.compile(r"top_n_tokens` must be >= 0 and <= (\d+)")


def _fewer_alternatives(message: str, parameters: dict[str, Any]) -> dict[str, Any] | None:
    match = _TOP_N_LIMIT.search(message)
    if not match or "top_n_tokens" not in parameters:
        return None
    limit = int(match.group(1))
    trimmed = {k: v for k, v in parameters.items() if k != "top_n_tokens"}
    return {**trimmed, "top_n_tokens": limit} if limit > 0 else trimmed


def _refit(message: str, parameters: dict[str, Any], limits: RemoteLimits) -> dict[str, Any] | None:
    """Parameters that fit TGI's exact prompt count, when it refused our estimate."""
    match = _OVER_TOTAL.search(message)
    if not match:
        return None
    room = int(match.group(1)) - int(match.group(2))
    if room < 1 or room >= parameters["max_new_tokens"]:
        return None
    return {**parameters, "max_new_tokens": room}
