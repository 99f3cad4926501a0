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

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.params import GenerationParams

# Each knob as transformers' own processor, in two groups because ``generate`` orders them so: the
# penalties before the caller's processors, the sampling warpers after them (and only when sampling).
# A new knob is one row here, as in each remote engine's table (``playground.backends.wire``).
PENALTIES: Mapping[str, Callable[[Any], LogitsProcessor]] = {
    "repetition_penalty": RepetitionPenaltyLogitsProcessor,
}
WARPERS: Mapping[str, Callable[[Any], LogitsProcessor]] = {
    "temperature": TemperatureLogitsWarper,
    "top_k": TopKLogitsWarper,
    "top_p": TopPLogitsWarper,
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
           end_ids: list[int], pad_id: int, steps: Steps, cancel: threading.Event) -> None:
    """Write up to ``max_new`` tokens after each row of ``input_ids`` (rows that end are padded), handing
    each step to ``steps`` as it is chosen. Stops when every row has ended, at ``max_new`` or on ``cancel``."""
    device = input_ids.device
    ends = torch.tensor(end_ids, dtype=torch.long, device=device)
    running = torch.ones(input_ids.shape[0], dtype=torch.bool, device=device)
    out = model(input_ids, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    for step in range(max_new):
        # A float32 copy, as generate makes: processors write into the scores, and logits may be bf16.
        logits = out.logits[:, -1].to(copy=True, dtype=torch.float32, device=device)
        chosen = scores(cast(torch.LongTensor, input_ids), logits)  # LongTensor: a legacy alias torch's cat lacks
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
        out = model(tokens[:, None], past_key_values=cache, use_cache=True)
