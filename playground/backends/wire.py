"""Generation parameters on the wire: one neutral mapping, then each engine's request format.

``sampling`` decides once what a request asks of an engine (greedy or not,
which knobs are on, how many new tokens fit); ``tgi_parameters`` and
``flavours.completion_request`` only spell that decision in each protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from playground.params import GenerationParams
from playground.prompt import Prompt
from playground.registry import ModelSpec


@dataclass(frozen=True)
class RemoteLimits:
    """The engine's limits, read from ``/info`` (TGI) or ``/v1/models`` (vLLM and others)."""

    max_total_tokens: int  # prompt + generated tokens
    max_input_tokens: int  # longest prompt accepted
    max_new_tokens: int  # most new tokens one request may ask for
    max_stop_sequences: int
    server_model: str | None = None  # the engine's own model name (vLLM needs it in requests)
    version: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class Sampling:
    """What one request asks of an engine, whatever its protocol. ``None`` means "leave it off"."""

    max_new_tokens: int
    temperature: float | None  # None: greedy
    top_p: float | None
    top_k: int | None
    repetition_penalty: float | None
    seed: int | None
    stop: tuple[str, ...]
    logprobs: int = 0  # alternatives per token
    weigh: bool = False  # the chosen tokens' log-probabilities are wanted (alternatives or ranking)
    n: int = 1  # candidates this one request asks for

    @property
    def greedy(self) -> bool:
        return self.temperature is None


def estimate_tokens(prompt: Prompt, spec: ModelSpec) -> int:
    """A deliberately conservative token count, for when no tokenizer is at hand."""
    return max(1, math.ceil(prompt.char_count / spec.chars_per_token))


def clamp_max_new_tokens(requested: int, prompt_tokens: int, limits: RemoteLimits) -> int:
    """Keep prompt + new tokens within the engine's total; always at least 1 so the
    engine, which counts exactly, decides whether a borderline prompt fits."""
    room = limits.max_total_tokens - prompt_tokens
    return max(1, min(requested, limits.max_new_tokens, room))


def sampling(params: GenerationParams, limits: RemoteLimits, prompt_tokens: int, weigh: bool | None = None) -> Sampling:
    """The neutral request: sampling knobs only when sampling, each only where it does something.
    ``weigh``: log-probabilities are wanted though ``params`` alone does not say so (one candidate of
    several, asked for in its own request)."""
    sample = not params.greedy
    return Sampling(
        max_new_tokens=clamp_max_new_tokens(params.max_new_tokens, prompt_tokens, limits),
        temperature=params.temperature if sample else None,
        top_p=params.top_p if sample and 0 < params.top_p < 1 else None,
        top_k=params.top_k if sample and params.top_k > 0 else None,
        repetition_penalty=params.repetition_penalty if params.repetition_penalty != 1 else None,
        seed=params.seed if sample else None,
        # The stream stage cuts every stop client-side; the engine gets as many as it allows
        # so that it stops generating early.
        stop=params.stop[: limits.max_stop_sequences],
        logprobs=params.logprobs,
        weigh=params.wants_logprobs if weigh is None else weigh,
        n=params.n,
    )


def tgi_parameters(request: Sampling) -> dict[str, Any]:
    """Keyword arguments for ``InferenceClient.text_generation``.

    Greedy sends ``do_sample=False`` and no sampling knobs: TGI refuses
    temperature 0 and turns sampling on when any warper is present.
    ``max_new_tokens`` is always sent; without it TGI runs to the full context.
    """
    out: dict[str, Any] = {"max_new_tokens": request.max_new_tokens, "do_sample": not request.greedy}
    optional = {"temperature": request.temperature, "top_p": request.top_p, "top_k": request.top_k,
                "seed": request.seed, "repetition_penalty": request.repetition_penalty}
    out.update({name: value for name, value in optional.items() if value is not None})
    if request.stop:
        out["stop"] = list(request.stop)
    if request.logprobs:
        out["top_n_tokens"] = request.logprobs  # each token's own logprob always comes with details
    return out

