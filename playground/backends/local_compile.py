"""The local engine's forward passes: eager on transformers' growing cache, or (``--compile on``) each
decode step compiled with ``torch.compile`` on a static cache.

Why compile: on a small model most of a token's time is the eager forward pass's dispatch around a few
hundred small operators, not its arithmetic. Compiled, with inductor's C++ wrapper calling the kernels
without Python in between, the same step on nano-starcoder ran at about 1.6-1.7x plain ``generate``,
where the engine's eager loop runs at about 1.2x (README, Performance: ``bench/bench_decode_options.py``).

Why it is opt-in: a compiled graph has fixed shapes, so each new (rows, cache length) compiles once:
seconds with a warm compile cache, up to a minute on a cold one. Cache lengths are rounded up to powers
of two (at least 128, at most the model's context) so that a handful of graphs serve every request,
and the engine compiles the one a default request needs (one row, a short prompt and the default new
tokens) while it loads. And compiled kernels may round differently from eager ones, so at a near tie the
tokens can part from ``generate``'s.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch

SHORTEST_CACHE = 128
COMPILING = "Compiling the decode step (torch.compile: seconds, up to a minute the first time)"


class Passes(Protocol):
    """The forward passes of one generation: the prompt, then one new token per row at a time. Each
    returns the logits of every row's last position."""

    def first(self, input_ids: torch.Tensor) -> torch.Tensor: ...

    def next(self, tokens: torch.Tensor) -> torch.Tensor: ...


class EagerPasses:
    """The forward pass as transformers runs it, on the cache it grows token by token."""

    def __init__(self, model: Any) -> None:
        self.model, self.cache = model, None

    def first(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        return cast(torch.Tensor, out.logits[:, -1])

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.model(tokens[:, None], past_key_values=self.cache, use_cache=True).logits[:, -1])


class StaticPasses:
    """One generation on a static cache of ``length`` positions: the prompt eagerly (its length varies),
    then every step through the compiled function."""

    def __init__(self, model: Any, step: Any, length: int) -> None:
        from transformers import StaticCache

        self.model, self.step = model, step
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.position = 0

    def first(self, input_ids: torch.Tensor) -> torch.Tensor:
        self.position = input_ids.shape[1]
        positions = torch.arange(self.position, device=input_ids.device)
        out = self.model(input_ids, past_key_values=self.cache, use_cache=True, cache_position=positions,
                         logits_to_keep=1)
        return cast(torch.Tensor, out.logits[:, -1])

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        position = torch.tensor([self.position], device=tokens.device)
        self.position += 1
        return cast(torch.Tensor, self.step(tokens[:, None], self.cache, position))


class CompiledSteps:
    """The decode step compiled once per (rows, cache length), shared by every generation."""

    def __init__(self, model: Any, context_length: int) -> None:
        import torch._dynamo

        # Each (rows, length) pair is one graph: up to 8 rows times a few lengths. Past dynamo's default
        # of 8 graphs a function would quietly run eagerly again.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self.model, self.context_length = model, context_length
        self._step = torch.compile(self._forward, dynamic=False, options={"cpp_wrapper": True})

    def _forward(self, tokens: torch.Tensor, cache: Any, position: torch.Tensor) -> torch.Tensor:
        out = self.model(tokens, past_key_values=cache, use_cache=True, cache_position=position)
        return cast(torch.Tensor, out.logits[:, -1])

    def cache_length(self, needed: int) -> int:
        """The shortest power of two (from 128) that holds ``needed`` positions, capped at the context."""
        length = SHORTEST_CACHE
        while length < needed:
            length *= 2
        return min(length, max(self.context_length, needed))

    def passes(self, needed: int) -> StaticPasses:
        return StaticPasses(self.model, self._step, self.cache_length(needed))
