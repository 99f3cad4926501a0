"""The three modes, found by name: each builds its prompt, presents streamed text and restores a share.

Outside this package no code compares a mode name with a string; it asks
``mode_named(name)`` for the object and lets the object decide.
"""

from __future__ import annotations

from collections.abc import Mapping

from playground.errors import InputError
from playground.modes.base import Mode, ModeContext, Presented, Restored
from playground.modes.chat import ChatMode
from playground.modes.complete import CompleteMode
from playground.modes.fill import FillMode

MODES: Mapping[str, Mode] = {mode.name: mode for mode in (ChatMode(), FillMode(), CompleteMode())}


def mode_named(name: object) -> Mode:
    """The mode called ``name``; an InputError listing the modes for anything else."""
    mode = MODES.get(name) if isinstance(name, str) else None
    if mode is None:
        raise InputError(f"Unknown mode {name!r}; use one of {', '.join(MODES)}.")
    return mode


__all__ = ["MODES", "Mode", "ModeContext", "Presented", "Restored", "mode_named"]
