"""The one error tree of the playground.

Every error carries a message a person can act on. Code below the edges raises
these; only the edges (Gradio handlers, REST routes, the CLI) turn them into
``gr.Error``, HTTP statuses (``playground.web.errors``) or exit messages.

    PlaygroundError
    ├── ConfigError                 bad flags or env vars (exit at start-up)
    ├── ModelError
    │   ├── UnknownModelError       no registry entry and no such folder
    │   ├── GatedModelError         licence not accepted / token missing or refused
    │   ├── HubUnreachableError     the hub cannot be reached and nothing is cached
    │   ├── QuantizationUnavailableError
    │   └── ModelLoadError
    ├── NotFoundError               no such route or resource (404)
    ├── InputError                  the request itself is wrong (4xx)
    │   ├── InvalidParameterError
    │   ├── InvalidTextError
    │   ├── FillMarkerError
    │   ├── PromptTooLongError
    │   └── EngineRejectedError     a remote engine refused the request as invalid (its 422)
    ├── BackendError                the model side failed (5xx)
    │   ├── BackendUnavailableError
    │   │   └── BackendAuthError    a remote engine refused the configured token (401/403)
    │   ├── BackendBusyError
    │   ├── BackendTimeoutError
    │   └── GenerationFailedError
    ├── BusyError                   the playground's own queue is full
    ├── RateLimitedError
    ├── CheckUnavailableError       attribution is off, still indexing, or its index is unreadable
    └── StoreError                  sharing is unavailable; generation still works
        ├── ShareNotFoundError      unknown, deleted or malformed share id (one message)
        ├── ShareForbiddenError     delete token missing or wrong
        ├── StoreLockedError        another process holds the write lock past the timeout
        ├── StoreFullError          disk full or the database size cap reached
        └── StoreCorruptError       the file is damaged or not a SQLite database
"""

from __future__ import annotations


class PlaygroundError(Exception):
    """Base class. ``message`` is shown to users; ``kind`` names the error in API answers.

    HTTP statuses are the API edge's business: see ``playground.web.errors``.
    """

    kind = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(PlaygroundError):
    kind = "config_error"


class ModelError(PlaygroundError):
    kind = "model_error"


class UnknownModelError(ModelError):
    kind = "unknown_model"


class GatedModelError(ModelError):
    kind = "gated_model"


class HubUnreachableError(ModelError):
    kind = "hub_unreachable"


class QuantizationUnavailableError(ModelError):
    kind = "quantization_unavailable"


class ModelLoadError(ModelError):
    kind = "model_load_failed"


class NotFoundError(PlaygroundError):
    kind = "not_found"


class InputError(PlaygroundError):
    kind = "invalid_request"


class InvalidParameterError(InputError):
    kind = "invalid_parameter"


class InvalidTextError(InputError):
    kind = "invalid_text"


class FillMarkerError(InputError):
    kind = "fill_marker"


class PromptTooLongError(InputError):
    kind = "prompt_too_long"


class BodyTimeoutError(InputError):
    """The request body did not arrive in time (a client trickling it in holds a connection)."""

    kind = "body_timeout"


class EngineRejectedError(InputError):
    """The remote engine's own validation refused the request (parameters or length)."""

    kind = "rejected_by_engine"


class BackendError(PlaygroundError):
    kind = "backend_error"


class BackendUnavailableError(BackendError):
    kind = "backend_unavailable"


class BackendAuthError(BackendUnavailableError):
    kind = "backend_auth"


class BackendBusyError(BackendError):
    kind = "backend_busy"


class BackendTimeoutError(BackendError):
    kind = "backend_timeout"


class GenerationFailedError(BackendError):
    kind = "generation_failed"


class BusyError(PlaygroundError):
    kind = "busy"


class RateLimitedError(PlaygroundError):
    kind = "rate_limited"


class KeyRequiredError(PlaygroundError):
    """The editor routes need an API key (``--api-key``) and the request had none, or an unknown one."""

    kind = "invalid_api_key"


class CheckUnavailableError(PlaygroundError):
    kind = "attribution_unavailable"


class StoreError(PlaygroundError):
    kind = "store_unavailable"


class ShareNotFoundError(StoreError):
    kind = "not_found"


class ShareForbiddenError(StoreError):
    kind = "forbidden"


class StoreLockedError(StoreError):
    kind = "store_locked"


class StoreFullError(StoreError):
    kind = "store_full"


class StoreCorruptError(StoreError):
    kind = "store_corrupt"


def quoted(value: object, limit: int = 40) -> str:
    """A client's value as an error message may show it: ASCII (no lone surrogate can leak out), and
    at most ``limit`` characters, so a huge value is never echoed back or logged whole."""
    text = ascii(value) if not isinstance(value, int) or abs(value) < 10**40 else "a number too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
