"""The Gradio stream's pacing: the first delta at once, then at most one update per interval, the whole
text at the end, and what is shown always the exact text so far."""

from __future__ import annotations

from playground.web.streaming import UPDATE_INTERVAL_S, coalesce


class Clock:
    """A clock the test moves: each delta arrives ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_first_delta_goes_at_once_then_about_thirty_updates_a_second():
    deltas = [f"t{i} " for i in range(300)]  # 300 tokens at 200 a second: 1.5 s
    shown = list(coalesce(deltas, clock=Clock(1 / 200)))
    assert shown[0] == "t0 "
    assert shown[-1] == "".join(deltas)
    assert 40 <= len(shown) <= 1.5 / UPDATE_INTERVAL_S + 2  # ~30 a second, never one per token
    assert all("".join(deltas).startswith(text) for text in shown)
    assert all(len(a) < len(b) for a, b in zip(shown, shown[1:], strict=False))


def test_a_slow_model_has_every_delta_shown_and_the_end_is_never_lost():
    deltas = ["a", "b", "c"]
    assert list(coalesce(deltas, clock=Clock(1.0))) == ["a", "ab", "abc"]
    assert list(coalesce(["x", "y"], clock=Clock(0.001))) == ["x", "xy"]  # the tail, though inside the interval
    assert list(coalesce([], clock=Clock(0.001))) == [""]  # an empty run still ends with its (empty) text
