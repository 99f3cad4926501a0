"""The compiled decode step (``--compile on``) on the shipped nano-starcoder: it must write what the eager
loop writes, and a compile that fails must leave the model serving eagerly.

Slow tier: each shape compiles once, seconds with a warm compile cache and up to a minute on a cold one.
"""

from __future__ import annotations

import threading

import pytest
import torch

from playground.backends.base import Chunk, Finished
from playground.backends.local import LocalBackend
from playground.backends.local_compile import CompiledSteps
from playground.config import load_settings
from playground.params import GenerationParams
from playground.prompt import Prompt

PROMPT = Prompt.of("import os\nimport sys\n\n\ndef main():\n")


def test_cache_lengths_are_powers_of_two_from_128_up_to_the_context():
    steps = CompiledSteps.__new__(CompiledSteps)  # the sizing alone: nothing compiles
    steps.context_length = 512
    assert [steps.cache_length(n) for n in (1, 128, 129, 300, 512)] == [128, 128, 256, 512, 512]


def test_the_flag_turns_it_on_and_it_is_off_by_default():
    assert load_settings(["--compile", "on"], {}).compile_steps
    assert load_settings([], {"PLAYGROUND_COMPILE": "on"}).compile_steps
    assert not load_settings([], {}).compile_steps


def texts(backend: LocalBackend, **knobs) -> tuple[list[str], Finished]:
    events: list = []
    params = GenerationParams(max_new_tokens=40, stop_loops=False, **knobs)
    backend.generate_into(PROMPT, params, threading.Event(), events.append)
    rows = [""] * params.n
    for event in events:
        if isinstance(event, Chunk):
            rows[event.index] += event.text
    return rows, events[-1]


@pytest.mark.slow
def test_compiled_steps_write_what_the_eager_loop_writes(nano, nano_backend):
    compiled = LocalBackend(nano, compile_steps=True)
    assert compiled._compiled is not None  # the warm-up compiled: no quiet fall back to eager
    for knobs in ({"temperature": 0.0}, {"temperature": 0.8, "top_p": 0.95, "seed": 7, "n": 2}):
        mine, mine_end = texts(compiled, **knobs)
        eager, eager_end = texts(nano_backend, **knobs)
        assert mine == eager and mine_end.completion_tokens == eager_end.completion_tokens
        assert all(mine) and mine_end.reasons == eager_end.reasons


@pytest.mark.slow
def test_a_model_that_cannot_compile_still_serves(nano, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", lambda function, **options: broken)
    backend = LocalBackend(nano, compile_steps=True)
    assert backend._compiled is None
    rows, finished = texts(backend, temperature=0.0)
    assert rows[0] and finished.reason == "length"
