"""Errors at the HTTP edge: the status table, and the one JSON shape every error leaves in.

The error classes say what went wrong; this table says what HTTP makes of it.
The most specific class listed wins (an error's own class, then its bases).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from playground import errors as e

STATUS: dict[type[e.PlaygroundError], int] = {
    e.PlaygroundError: 500,
    e.ConfigError: 400,
    e.ModelError: 503,
    e.UnknownModelError: 404,
    e.GatedModelError: 403,
    e.QuantizationUnavailableError: 400,
    e.NotFoundError: 404,
    e.InputError: 400,
    e.InvalidParameterError: 422,
    e.InvalidTextError: 400,
    e.FillMarkerError: 422,
    e.PromptTooLongError: 413,
    e.BodyTimeoutError: 408,
    e.EngineRejectedError: 422,
    e.BackendError: 502,
    e.BackendUnavailableError: 503,
    e.BackendAuthError: 502,  # our token to the engine is wrong: not the client's to fix
    e.BackendBusyError: 503,
    e.BackendTimeoutError: 504,
    e.BusyError: 503,
    e.RateLimitedError: 429,
    e.KeyRequiredError: 401,
    e.CheckUnavailableError: 503,
    e.StoreError: 503,
    e.ShareNotFoundError: 404,
    e.ShareForbiddenError: 403,
    e.StoreFullError: 507,
}

INTERNAL_MESSAGE = "Something went wrong on the server. Try again; if it repeats, report it with the time it happened."


def status_of(exc: e.PlaygroundError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(exc: e.PlaygroundError) -> dict[str, dict[str, str]]:
    return {"error": {"type": exc.kind, "message": exc.message}}


def error_response(exc: e.PlaygroundError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=status_of(exc), headers=headers)
