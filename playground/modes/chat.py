"""Chat on the Tech Assistant prompt: history and message in, the assistant's reply out.

The chat history arrives in two shapes (pairs from the REST API and older
clients, role/content messages from Gradio 6); both become (user, assistant)
pairs here, before the prompt is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from playground.errors import ConfigError, InputError
from playground.modes.base import ModeContext, Presented, Restored, user_stops
from playground.prompting.budget import check_text
from playground.prompting.chat import CHAT_STOPS, TechAssistantPrompt, build_chat, parse_tech_assistant
from playground.prompting.prepared import Prepared
from playground.record import Generation

_HISTORY_SHAPE = "history must be a list of [user, assistant] pairs or {role, content} messages."


class ChatMode:
    name = "chat"
    stops: tuple[str, ...] = CHAT_STOPS
    candidates = False  # whether params.n > 1 applies

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared:
        prompt = _chat_prompt(inputs.get("system_prompt"), ctx.chat_prompt)
        prepared = build_chat(prompt, history_pairs(inputs.get("history") or []), inputs.get("message", ""),
                              ctx.budget, ctx.count)
        if prompt is not ctx.chat_prompt:  # the user's own prompt is part of what they shared
            prepared = replace(prepared, inputs={**prepared.inputs, "system_prompt": inputs["system_prompt"]})
        return prepared

    def present(self, prepared: Prepared, raw: str) -> Presented:
        return Presented(raw.strip())

    def offset(self, raw: str) -> int:
        return len(raw) - len(raw.lstrip())  # the reply is the raw text stripped

    def deltas(self, prepared: Prepared, raw: Iterator[str]) -> Iterator[str]:
        """The reply's deltas without the whitespace ``present`` strips: leading whitespace is dropped
        before the first delta, and trailing whitespace is held back until text follows it."""
        started, held = False, ""
        for delta in raw:
            text = held + (delta if started else delta.lstrip())
            kept = text.rstrip()
            held = text[len(kept):]
            if kept:
                started = True
                yield kept

    def restore(self, record: Generation) -> Restored:
        turns = [(user, record.text if reply is None else reply) for user, reply in record.inputs.get("messages", [])]
        inputs = {"message": ""}
        if "system_prompt" in record.inputs:
            inputs["system_prompt"] = record.inputs["system_prompt"]
        return Restored(inputs, record.text, turns=tuple(turns), user_stops=user_stops(record, self.stops))


def _chat_prompt(custom: Any, default: TechAssistantPrompt) -> TechAssistantPrompt:
    """The server's prompt, unless the user edited it in the UI or sent their own over the API."""
    if custom is None or custom == default.text:
        return default
    try:
        return parse_tech_assistant(check_text("The chat prompt", custom))
    except ConfigError as exc:
        raise InputError(exc.message) from None


def history_pairs(raw: Any) -> list[tuple[str, str]]:
    """Chat history as (user, assistant) pairs; accepts pairs or role/content messages."""
    if not isinstance(raw, list):
        raise InputError(_HISTORY_SHAPE)
    pairs: list[tuple[str, str]] = []
    pending_user: str | None = None
    for item in raw:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            pairs.append((str(item[0] or ""), str(item[1] or "")))
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = message_text(item.get("content"))
            if item["role"] == "user":
                pending_user = content
            else:
                pairs.append((pending_user or "", content))
                pending_user = None
        else:
            raise InputError(_HISTORY_SHAPE)
    return pairs


def message_text(content: Any) -> str:
    """Gradio 6 chat messages carry a list of {"type": "text", "text": ...} blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""
