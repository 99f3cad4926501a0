"""Several candidates from an engine that makes one per request: n requests at once, merged.

Candidate i runs with seed + i, so one seed gives the same candidates again.
Each request streams in its own thread (they are remote calls: the engine
batches them), unless ``at_once`` is False: ``transformers serve`` seeds one
process-wide generator, so its concurrent samples would draw from each
other's. The chunks come out tagged with the candidate's index, and one
Finished sums the counts and says how each candidate ended.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from playground.backends.base import Chunk, EventStream, Finished, FinishReason
from playground.errors import PlaygroundError
from playground.params import MAX_SEED, GenerationParams

_JOIN_S = 2.0  # closing waits this long for each request to notice the cancel


def fan_out(open_one: Callable[[GenerationParams], EventStream], params: GenerationParams,
            cancel: threading.Event, *, at_once: bool = True) -> EventStream:
    """``params.n`` single-candidate streams from ``open_one``, run at once (or in turn) and merged."""
    events: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    seed = params.seed or 0
    singles = [replace(params, n=1, seed=(seed + i) % (MAX_SEED + 1)) for i in range(params.n)]
    if at_once:
        threads = [threading.Thread(target=_drain, args=(open_one, single, i, events), name=f"candidate-{i}",
                                    daemon=True) for i, single in enumerate(singles)]
    else:
        threads = [threading.Thread(target=_drain_in_turn, args=(open_one, singles, cancel, events),
                                    name="candidates", daemon=True)]
    for thread in threads:
        thread.start()
    endings: dict[int, Finished] = {}
    errors: dict[int, PlaygroundError] = {}
    emitted = False
    try:
        while len(endings) + len(errors) < params.n:
            index, item = events.get()
            if isinstance(item, Chunk):
                emitted = emitted or bool(item.text)
                yield replace(item, index=index)
            elif isinstance(item, Finished):
                endings[index] = item
            else:
                errors[index] = item
    finally:
        cancel.set()  # finished or abandoned: no request may go on
        for thread in threads:
            thread.join(_JOIN_S)
    if errors and not emitted and not endings:
        raise errors[min(errors)]
    yield _merged(endings, errors, params.n)


def _drain_in_turn(open_one: Callable[[GenerationParams], EventStream], singles: list[GenerationParams],
                   cancel: threading.Event, events: queue.SimpleQueue[tuple[int, Any]]) -> None:
    for index, single in enumerate(singles):
        if cancel.is_set():
            events.put((index, Finished("cancelled", None, 0)))
        else:
            _drain(open_one, single, index, events)


def _drain(open_one: Callable[[GenerationParams], EventStream], params: GenerationParams, index: int,
           events: queue.SimpleQueue[tuple[int, Any]]) -> None:
    try:
        for event in open_one(params):
            events.put((index, event))
    except PlaygroundError as exc:
        events.put((index, exc))
    except Exception as exc:  # noqa: BLE001 - a candidate's crash must not hang the others' consumer
        events.put((index, PlaygroundError(f"A candidate failed ({type(exc).__name__}).")))


def _merged(endings: dict[int, Finished], errors: dict[int, PlaygroundError], n: int) -> Finished:
    reasons: list[FinishReason] = [endings[i].reason if i in endings else "error" for i in range(n)]
    prompt = next((f.prompt_tokens for f in endings.values() if f.prompt_tokens is not None), None)
    made = sum(f.completion_tokens or 0 for f in endings.values())
    notices = tuple(dict.fromkeys(notice for f in endings.values() for notice in f.notices))
    failed = [f"Candidate {i + 1} failed: {errors[i].message}" for i in sorted(errors)]
    error = " ".join(failed) if len(errors) == n else None
    return Finished(reasons[0], prompt, made, error, notices + tuple(failed), reasons=tuple(reasons))
