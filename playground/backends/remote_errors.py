"""User-facing errors of the remote backends: each says what happened and what to do.

The TGI and OpenAI-compatible backends translate their client libraries'
exceptions into these; ``status_error`` maps an engine's HTTP status.
"""

from __future__ import annotations

import re

import httpx

from playground.errors import (
    BackendAuthError,
    BackendBusyError,
    BackendUnavailableError,
    EngineRejectedError,
    GenerationFailedError,
    InputError,
    PlaygroundError,
    PromptTooLongError,
)


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


def generation_failed(detail: str) -> GenerationFailedError:
    return GenerationFailedError(
        f"The model server failed while generating ({detail}). Try again; if it keeps failing, check its logs."
    )


# TGI: "`inputs` must have less than 1024 tokens. Given: 1500";
# vLLM: "maximum context length is 2048 tokens. However, your request has 3000 input tokens".
_INPUT_TOO_LONG = re.compile(r"(?:must have less than|maximum context length is) (\d+) tokens.*?(?:Given: |has |requested )(\d+)")


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


def describe(exc: BaseException) -> str:
    """A short reason for a failed HTTP call."""
    if isinstance(exc, httpx.ConnectError) or "connect" in type(exc).__name__.lower():
        return "connection refused or host unknown"
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return "it did not answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
