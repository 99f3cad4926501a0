"""OpenAI-compatible engines differ past the standard fields; a flavour says how one engine differs.

What each real engine does was measured against it (``docs/engines.md``):

* vLLM takes every knob past the standard fields in the body, under our
  names, and its ``stop_reason`` says whether a stop string ended the text;
* llama.cpp's server (llama-cpp-python) takes them too, one spelled its own
  way; a knob left out gets llama.cpp's own default, which is not neutral,
  so the neutral value is always sent; it reports a stop string as plain
  ``stop``; it has ``/extras/tokenize``;
* ``transformers serve`` refuses any field outside the OpenAI schema (422)
  and samples only when asked through its ``generation_config`` field;
* anything else gets the standard fields only.

Each flavour's ``fields`` is its table from knob names to the engine's own.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from playground.backends.remote_healing import start_gbnf, start_regex
from playground.backends.wire import GENERATE, Field, Sampling, spelled

# The completions API's own sampling fields, by knob. Temperature 0 is greedy in this API, so it is
# always sent: an engine's default temperature is not 0.
STANDARD: Mapping[str, Field] = {
    "temperature": Field("temperature", off=0.0),
    "top_p": Field("top_p"),
}


@dataclass(frozen=True)
class Flavour:
    name: str
    takes_n: bool = False  # one request returns n candidates (others get n requests at once)
    # This engine's own table: knobs past ``STANDARD``, sent in the body as extensions under its names, and
    # standard knobs whose engine default is not neutral, sent at ``off`` while they are off. A knob on
    # that has no row here (nor in ``STANDARD``) is not applied, and the record says so.
    fields: Mapping[str, Field] = field(default_factory=dict)
    reports_stop_reason: bool = False  # "stop" plus which string: only then are stops sent to the engine
    tokenize: str | None = None  # route that counts tokens exactly, relative to the server root
    # Sampling knobs go in a generation_config JSON field, named as in this table.
    generation_config: Mapping[str, Field] | None = None
    # How it is told that the output must begin with a given text (token healing): body fields for that
    # text, and what the record calls it. None: it cannot be told, and the prompt goes unhealed.
    start_constraint: Callable[[str], dict[str, Any]] | None = None
    start_constraint_name: str = ""


GENERIC = Flavour("openai-compatible")
VLLM = Flavour("vllm", takes_n=True, reports_stop_reason=True, tokenize="/tokenize", fields={
    "top_k": Field("top_k"),
    "repetition_penalty": Field("repetition_penalty"),
}, start_constraint=lambda text: {"structured_outputs": {"regex": start_regex(text)}},  # vLLM >= 0.12's spelling
    start_constraint_name="structured outputs, regex")
# A knob left out gets llama.cpp's own default, not a neutral one: every row has its neutral ``off``.
LLAMA_CPP = Flavour("llama.cpp", tokenize="/extras/tokenize", fields={
    "top_k": Field("top_k", off=0),  # llama.cpp's default: 40
    "repetition_penalty": Field("repeat_penalty", off=1.0),  # default 1.1
    "top_p": Field("top_p", off=1.0),  # default 0.95
}, start_constraint=lambda text: {"grammar": start_gbnf(text)}, start_constraint_name="GBNF grammar")
TRANSFORMERS = Flavour("transformers serve", generation_config=GENERATE)


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
        **spelled(request.knobs, STANDARD),
        "stream_options": {"include_usage": True},  # exact token counts in a last chunk, where the engine sends one
    }
    # logprobs = k: each token's own log-probability and the k best alternatives (0: the token's alone).
    optional = {"seed": request.seed, "logprobs": request.logprobs if request.weigh else None,
                "n": request.n if request.n > 1 else None}
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    if request.stop and flavour.reports_stop_reason:
        kwargs["stop"] = list(request.stop)
    if flavour.generation_config is not None and not request.greedy:
        # transformers serve samples only when its generation_config asks it to.
        config = {"do_sample": True, **spelled(request.knobs, flavour.generation_config, off=False)}
        extra: dict[str, Any] = {"generation_config": json.dumps(config)}
        taken = set(flavour.generation_config)
    else:
        extra = _extensions(request.knobs, flavour, kwargs, refused)
        taken = {knob for knob, row in flavour.fields.items() if row.name not in refused}
    not_applied = [knob for knob in request.knobs if knob not in STANDARD and knob not in taken]
    for name in refused & set(kwargs):
        kwargs.pop(name)
        if name == "logprobs":
            not_applied.append("logprobs")
    if request.starts_with and flavour.start_constraint is not None:
        extra.update(flavour.start_constraint(request.starts_with))
    if extra:
        kwargs["extra_body"] = extra
    return Request(kwargs, tuple(not_applied))


def _extensions(knobs: Mapping[str, Any], flavour: Flavour, sent: Mapping[str, Any],
                refused: frozenset[str]) -> dict[str, Any]:
    """The body fields past the OpenAI schema: the flavour's extensions first, then the neutral values of
    standard knobs that are off. A field the engine refused is never sent again."""
    extensions = {knob: row for knob, row in flavour.fields.items() if knob not in STANDARD}
    extra = {name: value for name, value in spelled(knobs, extensions).items() if name not in refused}
    for knob, row in flavour.fields.items():
        if knob in STANDARD and row.off is not None and row.name not in sent and row.name not in refused:
            extra[row.name] = row.off
    return extra


def not_applied_notice(knobs: tuple[str, ...], engine: str) -> str:
    return (f"The engine ({engine}) does not take {' or '.join(knobs)}, so the setting was not applied; "
            "this record shows what the engine used.")
