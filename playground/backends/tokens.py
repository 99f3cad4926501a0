"""Exact token counts for remote engines, from the model's own tokenizer file where one is at hand.

A remote engine tokenizes on its side; the playground still needs counts to
budget the context. ``tokenizer.json`` is read from the model's folder or the
hub cache (never downloaded) with the ``tokenizers`` library, which needs
neither torch nor transformers. Without it, counts are a conservative estimate
and the record says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playground.prompt import Prompt, Text
from playground.registry import ModelSpec

log = logging.getLogger(__name__)

ESTIMATED_NOTICE = ("Token counts are estimated (no tokenizer file for this model here), so the context budget "
                    "is approximate.")


def local_tokenizer(spec: ModelSpec) -> object | None:
    """The model's ``tokenizers.Tokenizer`` from its folder or the hub cache; None when neither has it."""
    from tokenizers import Tokenizer

    path = _tokenizer_file(spec)
    if path is None:
        return None
    try:
        return Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - a damaged file: estimate instead, and say why in the log
        log.warning("could not read %s; token counts will be estimated", path, exc_info=True)
        return None


def _tokenizer_file(spec: ModelSpec) -> Path | None:
    folder = Path(spec.resolved_source()).expanduser()
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(spec.source, "tokenizer.json", revision=spec.revision)
    except ValueError:  # not a hub id (a remote model may have any name): nothing cached under it
        return None
    return Path(cached) if isinstance(cached, str) else None


def prompt_counter(spec: ModelSpec) -> Callable[[Prompt], int] | None:
    """Counts prompts as the local backend encodes them (text, special-token spellings included, as text;
    each special token as one), with a tokenizer of its own; None without the model's tokenizer file.
    The engine process's web side counts with it, so a fill's hundreds of lines cost no round trips."""
    tokenizer: Any = local_tokenizer(spec)
    if tokenizer is None:
        return None
    tokenizer.encode_special_tokens = True  # what transformers' split_special_tokens does

    def count(prompt: Prompt) -> int:
        total, pending = 0, []
        for segment in (*prompt.segments, None):
            if isinstance(segment, Text):
                pending.append(segment.text)
                continue
            if pending:  # consecutive text is one run, as the local backend encodes it
                total += len(tokenizer.encode("".join(pending), add_special_tokens=False).ids)
                pending = []
            total += segment is not None
        return total

    return count


def count_with(tokenizer: object, text: str) -> int:
    """Tokens of ``text`` as the engine sees it: special-token spellings it contains are special tokens."""
    encoding = tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
    return len(encoding.ids)
