"""The stream stage: backend events in, visible text deltas and one outcome out.

Stop sequences are cut here, for every backend alike: text that could still
become a stop sequence is held back until it can't, so a stop that spans
tokens never flashes on screen. Loops (``stop_loops``) are cut the same way.
The wall-clock limit and the timings (time to first token, tokens/s) are
measured here too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from playground.backends.base import Backend, Chunk, Finished
from playground.params import GenerationParams
from playground.probabilities import TokenTrack
from playground.prompt import Prompt
from playground.prompting.loops import Loops

Ended = Callable[[str], bool]  # whether the mode's own rule has ended this raw text (a fill left its block)


class StopCutter:
    """Feed text deltas; get back only text that is certainly before any stop sequence or loop. A stop
    sequence's text is cut, and a loop's past its second copy (``loops``, when given); a mode's own
    ending (``ended``) keeps the text, which the mode trims."""

    def __init__(self, stops: tuple[str, ...], ended: Ended | None = None, loops: Loops | None = None):
        self.stops = tuple(s for s in stops if s)
        self.ended = ended
        self.loops = loops
        self.pending = ""
        self.seen = ""
        self.stopped = False
        self.looped = False  # stopped by a loop

    @classmethod
    def of(cls, params: GenerationParams, ended: Ended | None = None) -> StopCutter:
        return cls(params.stop, ended, Loops() if params.stop_loops else None)

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        self.seen += delta
        self.pending += delta
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        loop = self.loops.find(self.seen) if self.loops is not None else None
        start = len(self.seen) - len(self.pending)  # where pending begins in the text seen
        if loop is not None and loop.final and (cut < 0 or loop.at - start < cut):
            cut, self.looped = loop.at - start, True
        if cut >= 0:
            self.stopped = True
            safe, self.pending = self.pending[:cut], ""
            return safe
        if self.ended is not None and delta.strip() and self.ended(self.seen):  # decided only by visible text
            self.stopped = True
            safe, self.pending = self.pending, ""
            return safe
        # A loop's hold never reaches back into text already given out (it begins where a second copy ends).
        hold = max(self._partial_stop_length(), len(self.seen) - loop.at if loop is not None else 0)
        safe = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(safe) :]
        return safe

    def flush(self) -> str:
        rest, self.pending = ("" if self.stopped else self.pending), ""
        return rest

    def _partial_stop_length(self) -> int:
        """Length of the longest tail of ``pending`` that is a proper prefix of some stop."""
        best = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), best, -1):
                if self.pending.endswith(stop[:size]):
                    best = size
                    break
        return best


@dataclass
class Outcome:
    """How a generation ended; filled in when the stream is exhausted."""

    text: str = ""
    finish_reason: str = "cancelled"  # stays so when the consumer closes the stream early
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    total_ms: float = 0.0
    timed_out: bool = False
    looped: bool = False  # stopped where the model wrote the same text over and over
    notices: tuple[str, ...] = ()  # the backend's, e.g. a parameter the engine could not apply
    track: TokenTrack = field(default_factory=TokenTrack)  # the tokens behind the raw text, when asked for
    candidates: list[CandidateOutcome] = field(default_factory=list)  # params.n > 1: one per candidate, by index

    def end(self, finished: Finished) -> None:
        """The backend's ending: its counts, reason, error and notices."""
        self.prompt_tokens = finished.prompt_tokens or 0
        self.completion_tokens = finished.completion_tokens or 0
        self.error, self.finish_reason, self.notices = finished.error, finished.reason, finished.notices

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed after the first token, the figure users compare across engines. Candidates
        arrive together, so theirs is each one's tokens over the whole time: the speed of one of them."""
        if self.candidates:
            each = self.completion_tokens / len(self.candidates)
            return round(each / (self.total_ms / 1000), 2) if self.total_ms > 0 and each else None
        if self.ttft_ms is None or self.completion_tokens < 2:
            return None
        decode_s = (self.total_ms - self.ttft_ms) / 1000
        return round((self.completion_tokens - 1) / decode_s, 2) if decode_s > 0 else None


@dataclass
class CandidateOutcome:
    """One candidate's raw text (cut at a stop), its tokens and how it ended."""

    text: str = ""
    finish_reason: str = "cancelled"
    track: TokenTrack = field(default_factory=TokenTrack)
    cutter: StopCutter | None = None


def run_stream(
    backend: Backend,
    prompt: Prompt,
    params: GenerationParams,
    cancel: threading.Event,
    outcome: Outcome,
    *,
    time_limit_s: float,
    ended: Ended | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Generator[str, None, None]:
    """Yield visible deltas; fill ``outcome`` as the stream ends.

    Backend errors before the first chunk propagate (nothing was shown); the
    caller turns them into messages. Closing this generator cancels the backend.
    """
    cutter = StopCutter.of(params, ended)
    start = clock()
    deadline = start + time_limit_s
    events = backend.stream(prompt, params, cancel)
    try:
        for event in events:
            if isinstance(event, Chunk):
                if outcome.ttft_ms is None:
                    outcome.ttft_ms = (clock() - start) * 1000
                if params.wants_logprobs:
                    outcome.track.add(event.text, event.details)
                visible = cutter.feed(event.text)
                if visible:
                    outcome.text += visible
                    yield visible
                if cutter.stopped:
                    cancel.set()  # the model can stop now; the rest would be thrown away
                elif clock() > deadline and not cancel.is_set():
                    outcome.timed_out = True
                    cancel.set()
            elif isinstance(event, Finished):
                outcome.end(event)
    finally:
        events.close()  # a closed consumer (stop button, closed tab) reaches the backend here
        outcome.total_ms = (clock() - start) * 1000
    outcome.looped = cutter.looped
    if cutter.stopped:
        outcome.finish_reason = "stop"
    elif outcome.timed_out:
        outcome.finish_reason = "length"
        outcome.error = None
    tail = cutter.flush()
    if tail:
        outcome.text += tail
        yield tail


def run_candidates(
    backend: Backend,
    prompt: Prompt,
    params: GenerationParams,
    cancel: threading.Event,
    outcome: Outcome,
    *,
    time_limit_s: float,
    ended: Ended | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Generate ``params.n`` candidates to the end, each cut at its own stop; fill ``outcome.candidates``.

    Nothing streams: candidates are ranked once all are finished. Backend errors
    before the first chunk propagate, as in ``run_stream``.
    """
    candidates = [CandidateOutcome(cutter=StopCutter.of(params, ended)) for _ in range(params.n)]
    outcome.candidates = candidates
    start = clock()

    def time_up() -> None:
        # A timer, not a check per chunk: a backend may send nothing until all candidates are done.
        if not cancel.is_set():
            outcome.timed_out = True
            cancel.set()

    timer = threading.Timer(time_limit_s, time_up)
    timer.daemon = True
    timer.start()
    events = backend.stream(prompt, params, cancel)
    try:
        for event in events:
            if isinstance(event, Chunk):
                outcome.ttft_ms = outcome.ttft_ms if outcome.ttft_ms is not None else (clock() - start) * 1000
                _feed(candidates[event.index], event)
                if all(c.cutter is not None and c.cutter.stopped for c in candidates):
                    cancel.set()
            elif isinstance(event, Finished):
                outcome.end(event)
                for candidate, reason in zip(candidates, event.reasons or (event.reason,) * len(candidates),
                                             strict=False):
                    candidate.finish_reason = reason
    finally:
        timer.cancel()
        events.close()
        outcome.total_ms = (clock() - start) * 1000
    _settle(outcome)


def _settle(outcome: Outcome) -> None:
    """Each candidate's ending as the user sees it: a stop sequence it met, or the time limit."""
    for candidate in outcome.candidates:
        assert candidate.cutter is not None
        if candidate.cutter.stopped:
            candidate.finish_reason = "stop"
        elif outcome.timed_out and candidate.finish_reason in ("cancelled", "error"):
            candidate.finish_reason = "length"
        candidate.text += candidate.cutter.flush()
    if outcome.timed_out:
        outcome.error = None


def _feed(candidate: CandidateOutcome, chunk: Chunk) -> None:
    assert candidate.cutter is not None
    if candidate.cutter.stopped:
        return  # this candidate is done; the others go on
    candidate.track.add(chunk.text, chunk.details)
    candidate.text += candidate.cutter.feed(chunk.text)
