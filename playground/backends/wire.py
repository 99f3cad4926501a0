"""Generation parameters on the wire: one neutral request, then each engine's table of names.

``sampling`` decides once what a request asks of an engine (greedy or not,
which knobs are on, how many new tokens fit). The knobs travel by their
parameter names (``GenerationParams.knobs``); each backend spells them through
one table of its own: ``TGI`` here for text-generation-inference, ``GENERATE``
here for transformers (the local backend and ``transformers serve``), and the
OpenAI-compatible tables in ``flavours``. A new knob is one row per table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from playground.backends.remote_healing import start_regex
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
    flavour: str | None = None  # which OpenAI-compatible engine answered (``flavours.Flavour.name``)
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class Sampling:
    """What one request asks of an engine, whatever its protocol."""

    max_new_tokens: int  # already clamped to what the engine allows
    greedy: bool
    knobs: Mapping[str, Any]  # the settings that are on, by parameter name (``GenerationParams.knobs``)
    seed: int | None = None  # only while sampling: greedy text is the same without one
    stop: tuple[str, ...] = ()
    logprobs: int = 0  # alternatives per token
    weigh: bool = False  # the chosen tokens' log-probabilities are wanted (alternatives or ranking)
    n: int = 1  # candidates this one request asks for
    starts_with: str = ""  # token healing: the text the output must begin with ("" : no constraint)


@dataclass(frozen=True)
class Field:
    """How one engine takes one knob: the name it reads, and what it gets while the knob is off
    (None: nothing, the field is left out)."""

    name: str
    off: Any = None


def spelled(knobs: Mapping[str, Any], table: Mapping[str, Field], *, off: bool = True) -> dict[str, Any]:
    """The knobs ``table`` has a row for, under its names. A knob that is off sends the row's ``off``
    value, or nothing when ``off`` is False (an engine that reads only what is on)."""
    out = {}
    for knob, row in table.items():
        value = knobs.get(knob, row.off if off else None)
        if value is not None:
            out[row.name] = value
    return out


# text-generation-inference: keywords of ``InferenceClient.text_generation``. A knob that is off is left
# out, which is what TGI wants: it turns sampling on when any warper is present.
TGI: Mapping[str, Field] = {
    "temperature": Field("temperature"),
    "top_p": Field("top_p"),
    "top_k": Field("top_k"),
    "repetition_penalty": Field("repetition_penalty"),
}

# transformers' GenerationConfig names: the local backend's ``generate`` keywords, and what
# ``transformers serve`` reads from its generation_config field. ``off`` is the value ``generate`` gets
# while a knob is off: an explicit one, so that the model's own generation_config defaults never apply.
GENERATE: Mapping[str, Field] = {
    "temperature": Field("temperature"),
    "top_p": Field("top_p", off=1.0),
    "top_k": Field("top_k"),
    "repetition_penalty": Field("repetition_penalty", off=1.0),
}


def estimate_tokens(prompt: Prompt, spec: ModelSpec) -> int:
    """A deliberately conservative token count, for when no tokenizer is at hand."""
    return max(1, math.ceil(prompt.char_count / spec.chars_per_token))


def clamp_max_new_tokens(requested: int, prompt_tokens: int, limits: RemoteLimits) -> int:
    """Keep prompt + new tokens within the engine's total; always at least 1 so the
    engine, which counts exactly, decides whether a borderline prompt fits."""
    room = limits.max_total_tokens - prompt_tokens
    return max(1, min(requested, limits.max_new_tokens, room))


def sampling(params: GenerationParams, limits: RemoteLimits, prompt_tokens: int, weigh: bool | None = None) -> Sampling:
    """The neutral request. ``weigh``: log-probabilities are wanted though ``params`` alone does not
    say so (one candidate of several, asked for in its own request)."""
    return Sampling(
        max_new_tokens=clamp_max_new_tokens(params.max_new_tokens, prompt_tokens, limits),
        greedy=params.greedy,
        knobs=params.knobs(),
        seed=None if params.greedy else params.seed,
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
    temperature 0. ``max_new_tokens`` is always sent; without it TGI runs to
    the full context.
    """
    out: dict[str, Any] = {"max_new_tokens": request.max_new_tokens, "do_sample": not request.greedy,
                           **spelled(request.knobs, TGI)}
    if request.seed is not None:
        out["seed"] = request.seed
    if request.stop:
        out["stop"] = list(request.stop)
    if request.logprobs:
        out["top_n_tokens"] = request.logprobs  # each token's own logprob always comes with details
    if request.starts_with:  # token healing, through TGI's guidance
        out["grammar"] = {"type": "regex", "value": start_regex(request.starts_with)}
    return out
