"""The structured prompt that prompting builds and backends consume.

A prompt is a sequence of segments. ``Text`` is user or template text and is
always encoded as plain text, so a user who types ``<fim_prefix>`` gets those
characters, never the special token. ``Special`` names a control token such as
``<fim_prefix>``; only prompt builders create it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Zero-width space: breaks a special-token spelling for tokenizers we do not
# control (a remote engine tokenizes the prompt string itself).
_BREAK = "\u200b"


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Special:
    token: str


Segment = Text | Special


@dataclass(frozen=True)
class Prompt:
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, *segments: Segment | str) -> Prompt:
        return cls(tuple(Text(s) if isinstance(s, str) else s for s in segments if s != ""))

    def render(self) -> str:
        """The exact prompt text, as stored with a generation and shown as "raw prompt"."""
        return "".join(s.text if isinstance(s, Text) else s.token for s in self.segments)

    def render_for_remote(self, special_tokens: frozenset[str]) -> str:
        """A string for engines that tokenize themselves: special-token spellings
        inside ``Text`` are broken with a zero-width space so they stay text."""
        parts = []
        for segment in self.segments:
            if isinstance(segment, Special):
                parts.append(segment.token)
                continue
            text = segment.text
            for token in special_tokens:
                if token in text:
                    text = text.replace(token, token[0] + _BREAK + token[1:])
            parts.append(text)
        return "".join(parts)

    @property
    def char_count(self) -> int:
        return sum(len(s.text) if isinstance(s, Text) else 1 for s in self.segments)
