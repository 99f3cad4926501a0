"""Token healing on remote engines: the prompt's trailing break is taken back, and the engine's own
constrained decoding makes the output begin with it.

A remote engine tokenizes the prompt itself, so the app cannot take back a
token id; it takes back text instead: the line break and indentation (or the
spaces) the continued text ends with, which StarCoder-family tokenizers merge
with what follows. The engine is then asked to begin its output with exactly
that text, in its own terms: text-generation-inference with a regex
``grammar``, vLLM with ``structured_outputs``' regex, llama.cpp's server with
a GBNF ``grammar``. Engines with no such constraint (``transformers serve``,
unknown OpenAI-compatible servers) get the prompt as typed, and the record
says so. The output's first characters, the taken-back text, are removed
again here, so the text the app shows continues the prompt as the user typed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from playground.backends.base import Chunk, Event, Finished, TokenInfo

# A constrained start of any length is fine; past it, anything (newlines included) may follow.
_ANYTHING = r"[\s\S]*"


def start_regex(text: str) -> str:
    """A regex for outputs that begin with ``text`` (TGI's ``grammar`` and vLLM's structured outputs)."""
    return re.escape(text) + _ANYTHING


def start_gbnf(text: str) -> str:
    """A GBNF grammar (llama.cpp) for outputs that begin with ``text``: the text is whitespace only."""
    literal = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'root ::= "{literal}" [^\\x00]*'


def engine_stops(stops: tuple[str, ...], healed: str) -> tuple[str, ...]:
    """The stop sequences the engine may see: not one that could match in the taken-back text, which the
    engine writes first (a stop of "\n" would end a healed "\n    " at once). The stream stage cuts every
    stop on the text after it anyway; the engine's own stops only save it generating further."""
    def safe(stop: str) -> bool:
        return stop not in healed and not any(healed.endswith(stop[:k]) for k in range(1, len(stop)))

    return tuple(stop for stop in stops if safe(stop))


def healed_notice(text: str, how: str) -> str:
    return (f"Token healing: the prompt's trailing {text!r} was taken back and the engine was asked ({how}) to "
            "begin with it.")


def unhealed_notice(engine: str) -> str:
    return (f"Token healing is not available on this engine ({engine}: it has no way to constrain the first "
            "token), so the prompt was sent as typed; one that ends after a line break or indentation may give "
            "an odd start.")


def without_healed(events: Iterator[Event], healed: str, notice: str) -> Iterator[Event]:
    """The engine's events with the taken-back text removed from the start of each candidate's output,
    token details included (a token that was all taken-back text is dropped); ``notice`` joins the ending.
    An engine that did not keep to the constraint gets its text through unchanged after the point it left
    it, and the record says so."""
    left: dict[int, str] = {}
    strayed = False
    for event in events:
        if isinstance(event, Finished):
            yield replace(event, notices=(*event.notices, notice, *((_STRAYED,) if strayed else ())))
            continue
        rest = left.setdefault(event.index, healed) if isinstance(event, Chunk) else ""
        if isinstance(event, Chunk) and rest:
            cut = _common_prefix(event.text, rest)
            left_it = cut < min(len(rest), len(event.text))  # the text went another way: nothing more to take
            strayed = strayed or left_it
            left[event.index] = "" if left_it else rest[cut:]
            event = replace(event, text=event.text[cut:], details=_trimmed(event.details, cut))
        yield event


def with_notice(events: Iterator[Event], notice: str) -> Iterator[Event]:
    """The events as they are, with ``notice`` added to the ending."""
    for event in events:
        yield replace(event, notices=(*event.notices, notice)) if isinstance(event, Finished) else event


_STRAYED = "The engine did not begin with the taken-back text, so its output is shown as it came."


def _common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


def _trimmed(details: tuple[TokenInfo, ...], chars: int) -> tuple[TokenInfo, ...]:
    """Token details with the first ``chars`` characters of their joined text removed; a token keeps its
    own numbers, and its alternatives lose the same taken-back start where they have it."""
    out = []
    for token in details:
        if chars >= len(token.text) and chars:
            chars -= len(token.text)
            continue  # the whole token was taken-back text
        if chars:
            cut = token.text[:chars]
            top = tuple(replace(alt, text=alt.text[chars:]) if alt.text.startswith(cut) else alt for alt in token.top)
            token = replace(token, text=token.text[chars:], top=top)
        out.append(token)
        chars = 0
    return tuple(out)
