"""The modes, found by name: each declares its inputs, builds its prompt, presents streamed text and
restores a share.

``all_modes`` is the one list of modes; a new mode is its own module here,
its tab in ``web/ui/<name>.py`` (found by the mode's name), and a line there.
Outside this package no code compares a mode name with a string: it asks
``Modes`` for the object and lets the object decide.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from playground.errors import InputError, quoted
from playground.modes.base import Mode, ModeContext, ModeInputs, Restored, validated
from playground.modes.chat import ChatMode
from playground.modes.complete import CompleteMode
from playground.modes.fill import FillMode
from playground.prompting.chat import TechAssistantPrompt
from playground.record import Generation


def all_modes(chat_prompt: TechAssistantPrompt) -> tuple[Mode, ...]:
    """The one list of modes, in the order the UI shows their tabs."""
    return ChatMode(chat_prompt), FillMode(), CompleteMode()


class Modes(Mapping[str, Mode]):
    """The server's modes by name, built once with what they need (chat: the server's prompt)."""

    def __init__(self, chat_prompt: TechAssistantPrompt):
        self._modes = {mode.name: mode for mode in all_modes(chat_prompt)}

    def __getitem__(self, name: str) -> Mode:
        return self._modes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modes)

    def __len__(self) -> int:
        return len(self._modes)

    def named(self, name: object) -> Mode:
        """The mode called ``name``; an InputError listing the modes for anything else."""
        mode = self._modes.get(name) if isinstance(name, str) else None
        if mode is None:
            raise InputError(f"Unknown mode {quoted(name)}; use one of {', '.join(self._modes)}.")
        return mode

    def read_record(self, data: Mapping[str, Any]) -> Generation:
        """A stored record, with its generated part found where its mode keeps it."""
        mode = self._modes.get(data.get("mode", ""))
        return Generation.from_dict(data, mode.generated_field if mode else None)


__all__ = ["Mode", "ModeContext", "ModeInputs", "Modes", "Restored", "all_modes", "validated"]
