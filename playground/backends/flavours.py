"""OpenAI-compatible engines differ past the standard fields; a flavour says how one engine differs.

What each real engine does was measured against it (``docs/engines.md``):

* vLLM takes ``top_k`` and ``repetition_penalty`` in the body, and its
  ``stop_reason`` says whether a stop string ended the text;
* llama.cpp's server (llama-cpp-python) takes ``top_k`` and spells the
  penalty ``repeat_penalty``; a knob left out gets llama.cpp's own default
  (top_k 40, top_p 0.95, penalty 1.1), so neutral values are always sent;
  it reports a stop string as plain ``stop``; it has ``/extras/tokenize``;
* ``transformers serve`` refuses any field outside the OpenAI schema (422)
  and samples only when asked through its ``generation_config`` field;
* anything else gets the standard fields only.

Token probabilities and candidates, measured the same way: llama.cpp's
``logprobs`` are the model's raw distribution (before its penalties and
sampler), with the sampled token added to the top entries when it is not
among them; it ignores ``n``. ``transformers serve`` accepts ``logprobs`` and
``n`` and ignores both. Only vLLM is asked for ``n`` in one request; the others
get n requests (``candidates.fan_out``), and a missing ``logprobs`` is a notice.

An engine that cannot say which stop ended the text gets no stop strings:
they are cut on our side (the stream stage), which then reports ``stop``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playground.backends.wire import Sampling


@dataclass(frozen=True)
class Flavour:
    name: str
    takes_n: bool = False  # one request returns n candidates (others get n requests at once)
    spelling: dict[str, str] = field(default_factory=dict)  # our knob -> the engine's field, for extensions
    neutral: dict[str, Any] = field(default_factory=dict)  # sent when a knob is off: the engine's default is not
    reports_stop_reason: bool = False  # "stop" plus which string: only then are stops sent to the engine
    tokenize: str | None = None  # route that counts tokens exactly, relative to the server root
    generation_config: bool = False  # sampling knobs go in a generation_config JSON field


GENERIC = Flavour("openai-compatible")
VLLM = Flavour("vllm", takes_n=True, spelling={"top_k": "top_k", "repetition_penalty": "repetition_penalty"},
               reports_stop_reason=True, tokenize="/tokenize")
LLAMA_CPP = Flavour("llama.cpp", spelling={"top_k": "top_k", "repetition_penalty": "repeat_penalty"},
                    neutral={"top_k": 0, "top_p": 1.0, "repeat_penalty": 1.0}, tokenize="/extras/tokenize")
TRANSFORMERS = Flavour("transformers serve", generation_config=True)


def identify(openapi: Any, models: list[dict[str, Any]]) -> Flavour:
    """The flavour, from the server's OpenAPI document and its ``/v1/models`` entries."""
    if any(e.get("owned_by") == "vllm" or "max_model_len" in e for e in models):
        return VLLM
    info = openapi.get("info", {}) if isinstance(openapi, dict) else {}
    paths = openapi.get("paths", {}) if isinstance(openapi, dict) else {}
    if "llama.cpp" in str(info.get("title", "")) or "/extras/tokenize" in paths:
        return LLAMA_CPP
    if "/load_model" in paths and "/v1/responses" in paths:
        return TRANSFORMERS
    return GENERIC


@dataclass(frozen=True)
class Request:
    """Keyword arguments for ``completions.create`` and what the engine will not apply."""

    kwargs: dict[str, Any]
    not_applied: tuple[str, ...]


def completion_request(request: Sampling, flavour: Flavour, refused: frozenset[str]) -> Request:
    """``request`` in ``flavour``'s terms; ``refused`` holds fields this engine already turned down."""
    kwargs: dict[str, Any] = {
        "max_tokens": request.max_new_tokens,
        "temperature": request.temperature or 0.0,  # 0 is greedy in this API
        "stream_options": {"include_usage": True},  # exact token counts in a last chunk, where the engine sends one
    }
    # logprobs = k: each token's own log-probability and the k best alternatives (0: the token's alone).
    optional = {"top_p": request.top_p, "seed": request.seed, "logprobs": request.logprobs if request.weigh else None,
                "n": request.n if request.n > 1 else None}
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    if request.stop and flavour.reports_stop_reason:
        kwargs["stop"] = list(request.stop)
    extra: dict[str, Any] = {}
    wanted = {"top_k": request.top_k, "repetition_penalty": request.repetition_penalty}
    not_applied = []
    if flavour.generation_config and not request.greedy:
        config = {"do_sample": True, "temperature": request.temperature, **{k: v for k, v in
                  {"top_p": request.top_p, **wanted}.items() if v is not None}}
        extra["generation_config"] = json.dumps(config)
    else:
        for knob, value in wanted.items():
            name = flavour.spelling.get(knob)
            if value is not None and (name is None or name in refused):
                not_applied.append(knob)
            elif name is not None and name not in refused:
                extra[name] = value if value is not None else flavour.neutral.get(name)
        for name, value in flavour.neutral.items():
            if name in kwargs or name in extra or name in refused:
                continue
            extra[name] = value
    extra = {k: v for k, v in extra.items() if v is not None}
    for name in refused & set(kwargs):
        kwargs.pop(name)
        if name == "logprobs":
            not_applied.append("logprobs")
    if extra:
        kwargs["extra_body"] = extra
    return Request(kwargs, tuple(not_applied))


def not_applied_notice(knobs: tuple[str, ...], engine: str) -> str:
    return (f"The engine ({engine}) does not take {' or '.join(knobs)}, so the setting was not applied; "
            "this record shows what the engine used.")
