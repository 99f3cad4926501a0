"""The structured prompt that prompting builds and backends consume.

A prompt is a sequence of segments. ``Text`` is user or template text and is
always encoded as plain text, so a user who types ``<fim_prefix>`` gets those
characters, never the special token. ``Special`` names a control token such as
``<fim_prefix>``; only prompt builders create it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

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


# What token healing may take back from the text the model goes on from: a line break with the indentation
# after it, or trailing spaces. StarCoder-family tokenizers merge these with what follows ("\n    " and
# " name" are single tokens), so a prompt that ends on them ends on a token the model rarely saw there.
_BREAK_AT_END = re.compile(r"(\n[ \t]*|[ \t]+)\Z")


@dataclass(frozen=True)
class Prompt:
    segments: tuple[Segment, ...]
    # The segment whose end the model's text continues: the last by default; in a prefix-suffix-middle fill
    # it is the prefix, before the suffix and the middle sentinel. None: no text is continued.
    resumes: int | None = -1

    @classmethod
    def of(cls, *segments: Segment | str) -> Prompt:
        return cls(tuple(Text(s) if isinstance(s, str) else s for s in segments if s != ""))

    @property
    def resumed_text(self) -> str | None:
        """The text segment the model's text continues; None where it continues a special token."""
        if self.resumes is None or not self.segments:
            return None
        segment = self.segments[self.resumes]
        return segment.text if isinstance(segment, Text) else None

    def trailing_break(self) -> str:
        """The line break and indentation (or spaces) the continued text ends with; "" if none."""
        text = self.resumed_text
        match = _BREAK_AT_END.search(text) if text else None
        return match.group() if match else ""

    def taking_back(self, chars: int) -> Prompt:
        """This prompt with the last ``chars`` characters of the continued text taken back (token healing)."""
        text = self.resumed_text
        if not chars or text is None or self.resumes is None:
            return self
        segments = list(self.segments)
        segments[self.resumes] = Text(text[:-chars])
        return replace(self, segments=tuple(segments))

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
