"""What one kind of remote engine must say, for the shared driver in ``remote_common`` to serve it.

``RemoteBackend`` holds one ``EngineProtocol``: the driver owns the stream
(its thread, timeouts, retries, cancellation, counts and error messages); the
protocol owns what differs between engines (how their limits are read, how
one streaming request is opened, whether they count tokens or return several
candidates from one request). ``tgi.TgiProtocol`` and
``openai_compat.OpenAiProtocol`` are the two. Both talk over the ``Link`` the
backend made, so the HTTP client, the token and the timeouts are in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from playground.backends.pump import EventSource
from playground.backends.remote_errors import auth_refused, unavailable
from playground.backends.wire import RemoteLimits, Sampling
from playground.config_types import RemoteTimeouts
from playground.registry import ModelSpec


@dataclass(frozen=True)
class Link:
    """The connection to one engine, shared by the backend and its protocol."""

    spec: ModelSpec
    endpoint: str  # without a trailing slash
    token: str | None
    http: httpx2.Client  # shared by the backend's concurrent streams (thread-safe)
    timeouts: RemoteTimeouts
    read_backstop_s: float  # a read blocked this long ends its worker thread even if nobody shuts its socket

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class EngineProtocol(Protocol):
    """The operations that differ from one kind of engine to another."""

    @property
    def name(self) -> str:
        """The backend's name, as ``BackendInfo.backend`` and the registry say it."""
        ...

    def read_limits(self) -> RemoteLimits:
        """Ask the engine for its limits; raises PlaygroundError when it does not answer as expected."""
        ...

    def source(self, text: str, request: Sampling, limits: RemoteLimits) -> EventSource:
        """One streaming request for ``text``, opened when the driver's worker thread calls it."""
        ...

    def count(self, text: str) -> int | None:
        """The engine's own token count of ``text``; None where it has no way to give one."""
        ...

    @property
    def counts_exactly(self) -> bool:
        """Whether ``count`` gives the engine's counts (else the driver estimates, and says so)."""
        ...

    @property
    def start_constraint(self) -> str | None:
        """How this engine is made to begin its output with a given text (token healing), as the record
        names it; None where it cannot be (the prompt then goes unhealed)."""
        ...

    @property
    def native_candidates(self) -> bool:
        """Whether one request returns ``n`` candidates (else the driver makes n requests)."""
        ...

    @property
    def samples_at_once(self) -> bool:
        """Whether concurrent seeded requests keep their own random streams (see ``candidates.fan_out``)."""
        ...

    def close(self) -> None:
        """Let go of what the protocol made; the backend closes the link's HTTP client itself."""
        ...


def get_json(link: Link, url: str, *, allow_missing: bool = False) -> Any:
    """Plain GET of a JSON document, with failures turned into messages naming the URL.

    ``allow_missing``: a 404 returns None (the server lacks that optional route).
    """
    try:
        response = link.http.get(url, headers=link.auth, timeout=link.timeouts.connect_s)
    except httpx2.HTTPError as exc:
        reason = "connection refused or host unknown" if isinstance(exc, httpx2.ConnectError) else (
            "it did not answer in time" if isinstance(exc, httpx2.TimeoutException) else type(exc).__name__)
        raise unavailable(url, reason) from exc
    if response.status_code in (401, 403):
        raise auth_refused(url, response.status_code)
    if response.status_code == 404 and allow_missing:
        return None
    if response.status_code != 200:
        raise unavailable(url, f"HTTP {response.status_code} from {url}")
    try:
        return response.json()
    except ValueError as exc:
        raise unavailable(url, f"{url} did not answer with JSON") from exc
