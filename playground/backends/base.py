"""The Backend interface: a prompt goes in, text chunks stream out, then one Finished.

Nothing above this layer knows whether the model is in-process, remote or fake.
Cancellation is cooperative: the caller sets ``cancel`` and the backend stops
within one token (local) or closes the HTTP stream (remote).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from playground.params import GenerationParams
from playground.prompt import Prompt

FinishReason = Literal["length", "eos", "stop", "cancelled", "error"]
# The engine process of a local model (``engine.client``): loading, serving, coming back after a crash, or gone.
EngineState = Literal["starting", "ready", "restarting", "failed"]


@dataclass(frozen=True)
class Alternative:
    """A token the model could have written at this position, with its log-probability."""

    text: str
    logprob: float


@dataclass(frozen=True)
class TokenInfo:
    """One generated token as the model weighed it. ``top`` is best first; under greedy decoding the
    chosen token is its first entry. A token that ends inside a multi-byte character carries no text
    of its own: its log-probability is added to the token that completes the character."""

    text: str
    logprob: float
    top: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """New text, and how many tokens produced it (0 while a multi-byte char is pending).

    ``details``, when the request asked for log-probabilities, are the tokens behind ``text``: their
    texts join into it exactly. ``index`` is the candidate the text belongs to (``params.n`` > 1).
    """

    text: str
    tokens: int = 1
    details: tuple[TokenInfo, ...] = ()
    index: int = 0


@dataclass(frozen=True)
class Finished:
    """How the generation ended. Counts are the engine's; a remote engine that sends none leaves
    them None inside its backend, whose stream driver fills in its own count before passing it on."""

    reason: FinishReason
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None = None  # user-facing message when reason == "error"
    notices: tuple[str, ...] = ()  # what the engine did differently from what was asked, for the record
    reasons: tuple[FinishReason, ...] = ()  # params.n > 1: how each candidate ended, by index


Event = Chunk | Finished
# A generator, so that closing it (a consumer that stops listening) reaches the backend.
EventStream = Generator[Event, None, None]


@dataclass(frozen=True)
class BackendInfo:
    """What ``/api/models`` and shares report about the serving side."""

    model_id: str
    backend: str  # its name in ``backends.registry.BACKENDS``
    context_length: int
    loaded: bool
    dtype: str | None = None
    quantization: str | None = None
    revision: str | None = None
    endpoint: str | None = None
    device_map: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    max_input_tokens: int | None = None  # remote engines: longest prompt the server accepts
    max_new_tokens_limit: int | None = None
    max_stop_sequences: int | None = None
    concurrency: int = 1
    # Only a model in its own engine process has a process state; None: nothing of ours can crash apart.
    engine_state: EngineState | None = None
    engine_restarts: int = 0
    flavour: str | None = None  # an OpenAI-compatible server: which engine it answered as (vllm, llama.cpp ...)
    extra: dict[str, Any] = field(default_factory=dict)  # what the engine said about itself, for operators


class Backend(Protocol):
    def info(self) -> BackendInfo: ...

    def count_tokens(self, prompt: Prompt) -> int:
        """Tokens the prompt costs on this model (an estimate where no tokenizer is at hand)."""
        ...

    def render(self, prompt: Prompt) -> str:
        """The prompt exactly as this backend sends it: what a generation records as its raw prompt."""
        ...

    def stream(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> EventStream:
        """Yield Chunks, then exactly one Finished. ``params.seed`` is already concrete.

        With ``params.n`` > 1 the chunks of the candidates interleave, told apart by ``Chunk.index``;
        the seed gives the same candidates again. With ``params.wants_logprobs`` each chunk carries
        its tokens (``Chunk.details``), or the Finished notices say why it cannot.

        Raises BackendError subclasses only before the first Chunk; later
        failures end the stream with ``Finished(reason="error")`` so the
        partial text survives.
        """
        ...

    def close(self) -> None: ...
