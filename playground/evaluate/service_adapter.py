"""The one place that knows the app's service API: Settings → a running Playground → ``generate``.

Everything else in ``playground.evaluate`` sees only the ``Generate``
callable and a ``Deployment`` description, so when the service API changes
only this module follows it. Completions go through the real serving path
(``Playground.start("complete", ...)``): the same prompt handling, budget,
stop-sequence cutting and backend as a user of the app gets.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping, Sequence

from playground.bootstrap import build_playground
from playground.config import Settings, build_parser, load_settings
from playground.errors import GenerationFailedError
from playground.evaluate.runner import Deployment
from playground.service import Playground, Run

# Sampling as in the Codex and StarCoder papers: nucleus 0.95, no repetition penalty, no top-k.
# The registry's UI defaults (e.g. repetition_penalty 1.2) are for chatting, not for this measurement.
# No token healing either: the problem's prompt is measured exactly as given, on every backend.
SAMPLING = {"top_p": 0.95, "top_k": 0, "repetition_penalty": 1.0, "heal": False}


class ServiceGenerator:
    """A ``Generate`` over a Playground; ``stop_all`` ends generations in flight (Ctrl-C)."""

    def __init__(self, playground: Playground):
        self.playground = playground
        self._runs: set[Run] = set()
        self._lock = threading.Lock()

    def __call__(self, prompt: str, *, stop: list[str], temperature: float, seed: int | None,
                 max_new_tokens: int) -> str:
        params = {**SAMPLING, "temperature": temperature, "seed": seed, "max_new_tokens": max_new_tokens,
                  "stop": stop}
        run = self.playground.start("complete", None, {"prompt": prompt}, params)
        with self._lock:
            self._runs.add(run)
        try:
            for _ in run:
                pass
        finally:
            with self._lock:
                self._runs.discard(run)
        record = run.record
        if record is None or record.finish_reason in ("error", "cancelled"):
            reason = (record.error if record else None) or "the generation was cancelled"
            raise GenerationFailedError(f"The deployment failed while generating: {reason}. Fix it and rerun.")
        return record.text

    def deployment(self) -> Deployment:
        slot = self.playground.slot(None)
        info = slot.info()
        return Deployment(model=slot.spec.id, backend=info.backend, dtype=info.dtype,
                          quantization=info.quantization or "none",
                          revision=info.revision or self.playground.settings.revision)

    def stop_all(self) -> None:
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.stop()

    def close(self) -> None:
        self.stop_all()
        self.playground.shutdown(grace_s=2.0)


def settings_from_flags(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """The app's own flags and PLAYGROUND_* variables, parsed by the app's own parser."""
    return load_settings(list(argv), environ)


def open_service(settings: Settings) -> ServiceGenerator:
    """Build the playground and wait for a local model to load (raises ModelError if it cannot)."""
    playground, _ = build_playground(settings, wait=True)
    return ServiceGenerator(playground)


def app_parser() -> argparse.ArgumentParser:
    """The app's own parser: the CLI shows its flags in --help and validates them with it."""
    return build_parser()
