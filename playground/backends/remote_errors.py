"""What a remote engine's failures mean to a user: one table from exception types to errors.

The TGI and OpenAI-compatible backends raise their client libraries'
exceptions (huggingface_hub, openai, httpx2); ``classify`` turns any of them
into the error the user sees, by type, first match wins. ``status_error``
maps an engine's HTTP status, and ``engine_detail`` digs the engine's own
words out of whatever error body it sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, cast

import httpx2

from playground.errors import (
    BackendAuthError,
    BackendBusyError,
    BackendTimeoutError,
    BackendUnavailableError,
    EngineRejectedError,
    GenerationFailedError,
    InputError,
    PlaygroundError,
    PromptTooLongError,
)

_DETAIL_CHARS = 300  # an engine's message is shown trimmed: enough to act on, never a dump


def unavailable(url: str, detail: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"The model server at {url} cannot be reached ({detail}). Check that it is running and that "
        "the endpoint URL is right; the playground retries on the next request."
    )


def misconfigured(url: str, problem: str) -> BackendUnavailableError:
    """The server answers, but not as the configured engine would."""
    return BackendUnavailableError(f"The server at {url} {problem}. Check the endpoint URL and the backend type.")


def auth_refused(url: str, status: int) -> BackendAuthError:
    return BackendAuthError(
        f"The model server at {url} refused our token (HTTP {status}). Set a valid token for this endpoint."
    )


def busy() -> BackendBusyError:
    return BackendBusyError("The model server is busy (overloaded); try again in a few seconds.")


def timed_out(url: str) -> BackendTimeoutError:
    return BackendTimeoutError(f"The model server at {url} did not answer in time. Try again.")


def truncated(url: str) -> GenerationFailedError:
    return GenerationFailedError(
        f"The model server at {url} closed the stream before finishing "
        "(the connection dropped or the server restarted). Try again."
    )


def generation_failed(detail: str) -> GenerationFailedError:
    return GenerationFailedError(
        f"The model server failed while generating ({detail}). Try again; if it keeps failing, check its logs."
    )


# TGI: "`inputs` must have less than 1024 tokens. Given: 1500";
# vLLM: "maximum context length is 2048 tokens. However, your request has 3000 input tokens".
_INPUT_TOO_LONG = re.compile(
    r"(?:must have less than|maximum context length is) (\d+) tokens.*?(?:Given: |has |requested )(\d+)"
)


def rejected(detail: str) -> InputError:
    """The engine's validation refused the request; a too-long prompt gets its own error."""
    detail = detail.strip().rstrip(".")
    match = _INPUT_TOO_LONG.search(detail)
    if match and ("inputs` must" in detail or "input tokens" in detail):
        limit, given = match.groups()
        return PromptTooLongError(
            f"The prompt is too long for the model server ({given} tokens; it accepts {limit}). "
            "Shorten the input or remove old chat turns."
        )
    return EngineRejectedError(
        f"The model server rejected the request: {detail}. Change the parameters or shorten the input."
    )


def status_error(url: str, status: int, detail: str) -> PlaygroundError:
    """An HTTP error status from the engine, as the error the user sees."""
    if status == 429:
        return busy()
    if status in (401, 403):
        return auth_refused(url, status)
    if status == 404:
        return misconfigured(url, "answered 404 (no such route); give the server's base URL, e.g. http://host:8080")
    if status in (400, 422):
        return rejected(detail or f"HTTP {status}")
    if status in (502, 503, 504):
        return unavailable(url, f"HTTP {status}: it is starting up, or a proxy in front of it cannot reach it")
    return generation_failed(detail or f"HTTP {status}")


def engine_detail(body: Any) -> str | None:
    """The engine's own message from a JSON error body: TGI's and OpenAI's ``error`` (text or
    ``{"message"}``), FastAPI's ``detail`` (text or a list of field errors), or ``message``."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _trim(value)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return _trim(value["message"])
            if isinstance(value, list) and value:
                return _trim("; ".join(_field_error(item) for item in value))
    if isinstance(body, str) and body.strip():
        return _trim(body.strip())
    return None


def _field_error(item: Any) -> str:
    if isinstance(item, dict):
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        return f"{where}: {item.get('msg', '')}".strip(": ")
    return str(item)


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def response_detail(response: Any) -> str | None:
    """``engine_detail`` of an HTTP response's body, JSON or plain text."""
    if response is None:
        return None
    try:
        return engine_detail(response.json())
    except Exception:  # noqa: BLE001 - not JSON (or not readable): try the text
        try:
            return engine_detail(response.text)
        except Exception:  # noqa: BLE001 - a streamed body that was never read
            return None


Rule = tuple[tuple[type[BaseException], ...], Callable[[BaseException, str], PlaygroundError]]


@functools.cache
def _rules() -> tuple[Rule, ...]:
    """The table, built on first use so that importing this module loads neither client library."""
    import openai
    from huggingface_hub import errors as hub

    def detail(exc: BaseException) -> str:
        for candidate in (exc, exc.__cause__):
            found = response_detail(getattr(candidate, "response", None))
            if found:
                return found
        body = getattr(exc, "body", None)
        return engine_detail(body) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def by_status(exc: BaseException, url: str) -> PlaygroundError:
        for candidate in (exc, exc.__cause__):
            status = getattr(getattr(candidate, "response", None), "status_code", None)
            if isinstance(status, int):
                return status_error(url, status, detail(exc))
        return generation_failed(detail(exc))

    def connection(exc: BaseException, url: str) -> PlaygroundError:
        if isinstance(exc, httpx2.ConnectError) or isinstance(exc.__cause__, httpx2.ConnectError):
            return unavailable(url, "connection refused or host unknown")
        return truncated(url)

    return (
        ((PlaygroundError,), lambda exc, url: cast(PlaygroundError, exc)),
        ((hub.ValidationError,), lambda exc, url: rejected(detail(exc))),
        ((hub.OverloadedError,), lambda exc, url: busy()),
        ((hub.GenerationError, hub.IncompleteGenerationError, hub.UnknownError),
         lambda exc, url: generation_failed(detail(exc))),
        ((hub.InferenceTimeoutError, openai.APITimeoutError, httpx2.TimeoutException, TimeoutError),
         lambda exc, url: timed_out(url)),
        ((openai.APIStatusError, hub.HfHubHTTPError, httpx2.HTTPStatusError), by_status),
        ((openai.APIConnectionError, httpx2.TransportError, ConnectionError), connection),
        ((openai.APIError,), lambda exc, url: generation_failed(detail(exc))),  # an error event inside a stream
        ((OSError,), lambda exc, url: truncated(url)),
    )


def classify(exc: BaseException, url: str) -> PlaygroundError:
    """The user-facing error for any exception a remote request raised."""
    for types, make in _rules():
        if isinstance(exc, types):
            return make(exc, url)
    return generation_failed(f"unexpected {type(exc).__name__}")
