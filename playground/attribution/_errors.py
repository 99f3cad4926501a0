"""The two errors of code attribution, both in the playground's one error tree.

    PlaygroundError
    ├── AttributionUnavailable   an index cannot be read: missing, corrupt, locked or too new
    └── IndexBuildError          an index cannot be built from the inputs given

A check never breaks a generation: the caller catches ``AttributionUnavailable``
and records the check as unavailable. ``reason`` is a short machine-readable
word for logs and metrics; ``message`` says what to do.
"""

from __future__ import annotations

from playground.errors import PlaygroundError

REBUILD_HINT = "rebuild it with `python -m playground.attribution build`"


class AttributionUnavailable(PlaygroundError):
    """An index cannot be read. ``reason`` is one of missing, corrupt, locked, newer_format, not_an_index."""

    status = 503
    kind = "attribution_unavailable"

    def __init__(self, message: str, *, reason: str, path: str = ""):
        super().__init__(message)
        self.reason = reason
        self.path = path


class IndexBuildError(PlaygroundError):
    """The build inputs or options are wrong; nothing was written to the output path."""

    status = 400
    kind = "index_build_failed"
