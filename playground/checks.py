"""Post-generation checks: the generated code against code indexes, for verbatim copies (attribution).

A check runs once, on a finished generation, and never blocks or breaks it:
while the default index is being built, or when an index is missing, damaged,
locked or of a newer format, the record says attribution was unavailable and
why, and the detail goes to the log.

The default index covers nano-starcoder's training corpus and is built at the
first start, in the background (a couple of seconds; see docs/attribution.md
for why this beats shipping the file). Indexes of your own are added with
``--attribution-index``; ``--attribution off`` turns the check off.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from playground.attribution import Report
from playground.errors import PlaygroundError

log = logging.getLogger("playground.checks")

MAX_CHECK_CHARS = 100_000  # what POST /api/attribution takes; a generation is far shorter


class AttributionCheck:
    """The attribution check of one server: its indexes, opened in the background, and its state."""

    def __init__(self, data_dir: Path, extra_indexes: tuple[Path, ...] = (), *, default: bool = True):
        self.data_dir = data_dir
        self.extra_indexes = extra_indexes
        self.default = default
        self.state = "indexing"  # indexing | ready | unavailable
        self.message = "Attribution is still indexing its code corpus; generations are not checked yet."
        self._attribution: Any = None  # playground.attribution.Attribution, once open
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        """Open (or first build) the indexes on a thread; a second call returns the same thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._open, name="attribution-index", daemon=True)
                self._thread.start()
            return self._thread

    def _open(self) -> None:
        from playground.attribution import Attribution, ensure_default_index

        try:
            paths = [ensure_default_index(self.data_dir)] if self.default else []
            attribution = Attribution.open([*paths, *self.extra_indexes])
        except PlaygroundError as exc:
            self._unavailable(exc.message, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a check must never take the server down
            self._unavailable("The attribution index could not be built; the server log has the detail.", exc)
            return
        with self._lock:
            if self._closed:  # the server shut down while the index was being built
                attribution.close()
                return
            self._attribution, self.state = attribution, "ready"
            names = ", ".join(info.name for info in attribution.describe())
            self.message = f"Generations are checked against {names}."
        log.info("attribution ready: %s", self.message)

    def _unavailable(self, message: str, exc: BaseException) -> None:
        log.warning("attribution unavailable: %s", message, exc_info=exc)
        with self._lock:
            self.state, self.message = "unavailable", message

    def status(self) -> dict[str, Any]:
        with self._lock:
            indexes = [i.to_dict() for i in self._attribution.describe()] if self._attribution else []
            return {"state": self.state, "message": self.message, "indexes": indexes}

    def check(self, text: str) -> Report:
        """The report for ``text``; its ``unavailable`` says why when no check could be made."""
        with self._lock:
            attribution = self._attribution
            message = self.message
        if attribution is None:
            return Report.not_made(message)
        try:
            report: Report = attribution.check(text)
            return report
        except PlaygroundError as exc:
            log.warning("attribution check failed: %s", exc.message, exc_info=exc)
            return Report.not_made(exc.message)
        except Exception as exc:  # noqa: BLE001 - e.g. an index closed at shutdown: never break a generation
            log.warning("attribution check failed", exc_info=exc)
            return Report.not_made("The attribution check failed; the server log has the detail.")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            attribution, self._attribution = self._attribution, None
            self.state, self.message = "unavailable", "The server is shutting down."
        if attribution is not None:
            attribution.close()
