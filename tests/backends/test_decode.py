"""The local engine's decode loop against transformers' own ``generate``, on the shipped nano-starcoder.

The loop claims to write what ``generate`` writes, token for token, greedy or sampled from the same seed;
these tests hold it to that with ``generate`` itself as the reference, over every knob, several rows and
rows that end early.
"""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import TopPLogitsWarper

from playground.backends.local_decode import PENALTIES, WARPERS, SortedTopP, decode, processors
from playground.backends.local_steps import Forbid
from playground.params import PARAMS, GenerationParams
from playground.prompt import Prompt

PROMPT = "import os\n\n\ndef main():\n"


class Kept:
    """A sink that keeps each step's tokens, one list per row."""

    def __init__(self) -> None:
        self.steps: list[list[int]] = []

    def put(self, value: torch.Tensor) -> None:
        self.steps.append(value.tolist())

    def rows(self) -> list[list[int]]:
        return [list(row) for row in zip(*self.steps, strict=True)]


def by_generate(model, ids, params: GenerationParams, ends: list[int], seed: int, own=None) -> list[list[int]]:
    """The reference: ``generate`` with the same knobs (the sampling ones only when sampling, as it wants)."""
    sampling = {} if params.greedy else {"temperature": params.temperature, "top_p": params.top_p,
                                         "top_k": params.top_k}
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=params.max_new_tokens,
                             do_sample=not params.greedy, num_return_sequences=params.n, eos_token_id=ends,
                             pad_token_id=ends[0], repetition_penalty=params.repetition_penalty,
                             logits_processor=own, **sampling)
    return out[:, ids.shape[1]:].tolist()


def by_decode(model, ids, params: GenerationParams, ends: list[int], seed: int, own=None) -> list[list[int]]:
    kept = Kept()
    torch.manual_seed(seed)
    with torch.inference_mode():
        decode(model, ids.repeat(params.n, 1), params.max_new_tokens, processors(params, list(own or [])),
               greedy=params.greedy, end_ids=ends, pad_id=ends[0], steps=kept, cancel=threading.Event())
    return kept.rows()


@pytest.fixture(scope="module")
def model_and_ids(nano_backend):
    return nano_backend.model, torch.tensor([nano_backend.encode(Prompt.of(PROMPT))]), nano_backend.eos_ids


KNOBS = [
    {"temperature": 0.0, "repetition_penalty": 1.0},
    {"temperature": 0.0},  # the default repetition penalty, greedy
    {},  # the defaults: temperature 0.2, top-p 0.9, repetition penalty 1.2
    {"temperature": 1.3, "top_p": 1.0, "top_k": 20, "repetition_penalty": 1.3},
    {"temperature": 1.0, "top_p": 0.5},
]


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: ",".join(f"{n}={v}" for n, v in k.items()) or "defaults")
def test_the_loop_writes_what_generate_writes(model_and_ids, knobs):
    model, ids, ends = model_and_ids
    rows = 1 if knobs.get("temperature") == 0.0 else 3  # generate refuses several greedy rows
    params = GenerationParams(max_new_tokens=48, n=rows, **knobs)
    for seed in (0, 11):
        assert by_decode(model, ids, params, ends, seed) == by_generate(model, ids, params, ends, seed)


def test_rows_that_end_are_padded_and_the_loop_stops_when_all_have(model_and_ids):
    """Row r's own token at step r + 1 made an end, so that every row ends, and at different steps."""
    model, ids, ends = model_and_ids
    params = GenerationParams(max_new_tokens=48, n=4, temperature=1.0, top_p=1.0)
    free = by_decode(model, ids, params, ends, 3)
    made = sorted({row[index + 1] for index, row in enumerate(free)})
    mine = by_decode(model, ids, params, made, 3)
    theirs = by_generate(model, ids, params, made, 3)
    assert mine == theirs
    lengths = [next(i for i, t in enumerate(row) if t in made) + 1 for row in mine]
    assert len(set(lengths)) > 1 and len(mine[0]) == max(lengths) <= 5  # the loop stopped with the last row


def test_the_engines_own_processors_run_between_the_penalties_and_the_warpers(model_and_ids):
    model, ids, ends = model_and_ids
    forbidden = by_decode(model, ids, GenerationParams(max_new_tokens=8, temperature=0.0), ends, 0)[0][:2]
    params = GenerationParams(max_new_tokens=32, n=2, temperature=0.9, top_k=5)
    mine = by_decode(model, ids, params, ends, 4, own=[Forbid(forbidden)])
    assert mine == by_generate(model, ids, params, ends, 4, own=[Forbid(forbidden)])
    assert not set(forbidden) & {t for row in mine for t in row}
    names = [type(p).__name__ for p in processors(params, [Forbid(forbidden)])]
    assert names == ["RepetitionPenaltyLogitsProcessor", "Forbid", "TemperatureLogitsWarper", "TopKLogitsWarper",
                     "SortedTopP"]
    assert [type(p).__name__ for p in processors(GenerationParams(temperature=0.0), [])] == [
        "RepetitionPenaltyLogitsProcessor"]  # greedy: no sampling knob


def test_cancel_stops_the_loop_after_the_step_that_saw_it(model_and_ids):
    model, ids, ends = model_and_ids
    cancel = threading.Event()

    class CancelAfterThree(Kept):
        def put(self, value: torch.Tensor) -> None:
            super().put(value)
            if len(self.steps) == 3:
                cancel.set()

    kept = CancelAfterThree()
    with torch.inference_mode():
        decode(model, ids, 100, processors(GenerationParams(temperature=0.0), []), greedy=True, end_ids=ends,
               pad_id=ends[0], steps=kept, cancel=cancel)
    assert len(kept.steps) == 3


def test_every_knob_has_a_processor():
    assert set(PENALTIES) | set(WARPERS) == {name for name, param in PARAMS.items() if param.knob is not None}
    assert not set(PENALTIES) & set(WARPERS)


def random_scores(generator: torch.Generator, case: int) -> torch.Tensor:
    """Rows of logits of four kinds: spread, coarse (many ties), partly forbidden (-inf), and tiny."""
    rows = int(torch.randint(1, 9, (), generator=generator))
    width = int(torch.randint(2, 300, (), generator=generator))
    if case % 4 == 1:
        return torch.randint(-3, 4, (rows, width), generator=generator).float()
    scores = torch.randn(rows, width, generator=generator) * 3
    if case % 4 == 2:
        scores[:, torch.randint(0, width, (width // 3,), generator=generator)] = -float("inf")
    if case % 4 == 3:
        scores = scores[:, :2].contiguous()
    return scores


def test_the_faster_top_p_cuts_exactly_where_transformers_does():
    generator = torch.Generator().manual_seed(5)
    for case in range(800):
        scores = random_scores(generator, case)
        top_p = float(torch.rand((), generator=generator).clamp(0.01, 1.0))
        keep = 1 + case % 2
        mine = SortedTopP(top_p, min_tokens_to_keep=keep)(None, scores.clone())
        reference = TopPLogitsWarper(top_p, min_tokens_to_keep=keep)(None, scores.clone())
        assert torch.equal(mine, reference), (case, scores, top_p)


def test_the_faster_top_p_sorts_by_itself_unless_the_cut_falls_in_a_tie(monkeypatch):
    calls = []
    monkeypatch.setattr(TopPLogitsWarper, "__call__", lambda self, ids, scores: calls.append(scores) or scores)
    scores = torch.randn(8, 4096, generator=torch.Generator().manual_seed(0)) * 3
    kept = SortedTopP(0.9)(None, scores)
    assert not calls and 0 < int(torch.isinf(kept).sum()) < scores.numel()
    SortedTopP(0.5)(None, torch.tensor([[0.0, 1.0, 1.0, 1.0]]))  # the cut falls among the three equal values
    assert len(calls) == 1
