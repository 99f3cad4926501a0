"""The local engine's decode loop: ``generate``'s sampling loop as the playground uses it, without the
framework's bookkeeping around every step.

Why not ``model.generate``: on a small model the time a token takes is mostly the framework's, and
``generate`` spends some of it, every step, on work this engine never needs (re-reading the model's
signature and its generation config, criteria lists, deferred stop checks). The loop here is the same
steps in the same order: the prompt is read once (keeping only its last position's logits), then each
step runs the processors in ``generate``'s order, takes the argmax or one multinomial draw from their
softmax, pads rows that have ended and feeds the new tokens back with the cache. So what it writes is
``generate``'s output token for token, greedy or sampled from the same seed (``tests/backends/
test_decode.py`` holds it to ``generate`` itself), about 1.16x as fast on nano-starcoder (README, Performance).

Stop is one check of the cancel event per token, so a generation ends within one token of the click.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import numpy as np
import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.backends.local_compile import EagerPasses, Passes
from playground.params import GenerationParams


class SortedTopP(TopPLogitsWarper):
    """transformers' nucleus filter, the same arithmetic with a faster sort on the CPU.

    Why: torch's CPU sort also returns indices and takes about 0.3 ms for one 4,096-entry row, so with
    eight candidates on nano-starcoder top-p was a quarter of every step. The filter needs only the
    sorted values (their cumulative probabilities say how many of the lowest go), and numpy sorts the
    values alone about ten times faster. What goes is then every token at or below the last value
    removed. Where that value ties the first one kept, which of the tied tokens go depends on the sort's
    order of equals, so that case, like any tensor that is not float32 on the CPU, runs transformers' own.
    """

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if (scores.device.type != "cpu" or scores.dtype != torch.float32 or scores.dim() != 2
                or scores.shape[1] <= self.min_tokens_to_keep):
            return cast(torch.FloatTensor, super().__call__(input_ids, scores))
        values = scores.detach().numpy()
        ascending = np.sort(values, axis=-1)
        # transformers' own arithmetic on the same sorted values, so the same probabilities and the same cut;
        # the bookkeeping after it is numpy's, which costs a few microseconds where a torch call costs tens.
        cumulative = torch.from_numpy(ascending).softmax(dim=-1).cumsum(dim=-1)
        remove = (cumulative <= (1 - self.top_p)).numpy()
        remove[:, -self.min_tokens_to_keep :] = False
        count = remove.sum(axis=-1)
        rows, last = np.arange(len(count)), np.maximum(count - 1, 0)
        edge, cutting = ascending[rows, last], count > 0
        tied = cutting & (edge == ascending[rows, last + 1])
        if tied.any() or not np.array_equal(remove, np.arange(remove.shape[1]) < count[:, None]):
            # Not a clean cut: the reference decides.
            return cast(torch.FloatTensor, super().__call__(input_ids, scores))
        cut = torch.from_numpy((values <= edge[:, None]) & cutting[:, None])
        return cast(torch.FloatTensor, scores.masked_fill(cut, self.filter_value))


# Each knob as transformers' own processor, in two groups because ``generate`` orders them so: the
# penalties before the caller's processors, the sampling warpers after them (and only when sampling).
# A new knob is one row here, as in each remote engine's table (``playground.backends.wire``).
PENALTIES: Mapping[str, Callable[[Any], LogitsProcessor]] = {
    "repetition_penalty": RepetitionPenaltyLogitsProcessor,
}
WARPERS: Mapping[str, Callable[[Any], LogitsProcessor]] = {
    "temperature": TemperatureLogitsWarper,
    "top_k": TopKLogitsWarper,
    "top_p": SortedTopP,
}


class Steps(Protocol):
    """Where each step's chosen tokens go, one per row (a finished row repeats its pad)."""

    def put(self, value: torch.Tensor) -> None: ...


def processors(params: GenerationParams, own: list[LogitsProcessor]) -> LogitsProcessorList:
    """The knobs that are on and the engine's own processors, in ``generate``'s order."""
    knobs = params.knobs()  # greedy leaves the sampling knobs out, as generate ignores them
    ordered = [make(knobs[name]) for name, make in PENALTIES.items() if name in knobs]
    ordered += own
    ordered += [make(knobs[name]) for name, make in WARPERS.items() if name in knobs]
    return LogitsProcessorList(ordered)


def decode(model: Any, input_ids: torch.Tensor, max_new: int, scores: LogitsProcessorList, *, greedy: bool,
           end_ids: list[int], pad_id: int, steps: Steps, cancel: threading.Event, passes: Passes | None = None
           ) -> None:
    """Write up to ``max_new`` tokens after each row of ``input_ids`` (rows that end are padded), handing
    each step to ``steps`` as it is chosen. Stops when every row has ended, at ``max_new`` or on ``cancel``.
    ``passes`` runs the model (``local_compile``: eager by default, or compiled on a static cache)."""
    device = input_ids.device
    ends = torch.tensor(end_ids, dtype=torch.long, device=device)
    running = torch.ones(input_ids.shape[0], dtype=torch.bool, device=device)
    passes = passes or EagerPasses(model)
    last = passes.first(input_ids)
    for step in range(max_new):
        # A float32 copy, as generate makes: processors write into the scores, and logits may be bf16.
        logits = last.to(copy=True, dtype=torch.float32, device=device)
        chosen = logits
        for processor in scores:  # called directly: the list's own call re-reads each one's signature every step
            chosen = processor(cast(torch.LongTensor, input_ids), chosen)  # a legacy alias torch's cat lacks
        if greedy:
            tokens = chosen.argmax(dim=-1)
        else:
            tokens = torch.multinomial(torch.softmax(chosen, dim=-1), num_samples=1).squeeze(1)
        tokens = torch.where(running, tokens, pad_id)
        input_ids = torch.cat([input_ids, tokens[:, None]], dim=-1)
        steps.put(tokens)
        running &= ~torch.isin(tokens, ends)
        if step + 1 == max_new or cancel.is_set() or not running.any():
            return
        last = passes.next(tokens)
