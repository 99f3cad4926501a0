"""Chat on the Tech Assistant prompt: history and message in, the assistant's reply out.

The chat history arrives in three shapes: REST ``messages`` (role/content,
the last from the user), Gradio 6 messages whose content is a list of text
blocks, and (user, assistant) pairs from older clients. All become pairs
here, before the prompt is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from playground.errors import ConfigError, InputError
from playground.modes.base import ModeContext, ModeInputs, Restored, user_params
from playground.prompting.budget import check_text
from playground.prompting.chat import CHAT_STOPS, TechAssistantPrompt, build_chat, parse_tech_assistant
from playground.prompting.prepared import Prepared
from playground.record import Generation, Shown

_HISTORY_SHAPE = "history must be a list of [user, assistant] pairs or {role, content} messages."
Breakdown = dict[str, int]  # tokens per part of the prompt, for the context meter


class TextBlock(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["user", "assistant"]
    # Blocks that are not text (an image part, say) are left out, as message_text does.
    content: str | list[TextBlock | dict[str, Any]] = Field("", description="Text, or Gradio 6's list of "
                                                            "content blocks (only text blocks are read).")


class ChatInputs(ModeInputs):
    messages: list[Message] | None = Field(None, description="The conversation so far; the last from the user.")
    message: str | None = Field(None, description="Instead of messages: the new message ...")
    history: list[Any] | None = Field(None, description="... after these [user, assistant] pairs or messages.")
    system_prompt: str | None = Field(None, description="A Tech Assistant prompt of your own; the server's "
                                                        "by default.")

    def to_inputs(self) -> dict[str, Any]:
        inputs = self.model_dump(exclude_none=True, exclude={"messages"})
        if self.messages is not None:
            if not self.messages:
                raise InputError('messages must be a non-empty list of {"role", "content"} objects.')
            last = self.messages[-1]
            if last.role != "user":
                raise InputError("The last of messages must come from the user (role \"user\").")
            inputs["history"] = [m.model_dump() for m in self.messages[:-1]]
            inputs["message"] = message_text(last.content)
        return inputs


class ChatMode:
    name: ClassVar[str] = "chat"
    stops: tuple[str, ...] = CHAT_STOPS
    candidates: ClassVar[bool] = False  # one reply
    own_params: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[type[ModeInputs]] = ChatInputs
    generated_field: ClassVar[str | None] = None  # the record's text is the reply itself

    def __init__(self, prompt: TechAssistantPrompt):
        self.prompt = prompt  # the server's few-shot prompt; a user may send their own

    def build(self, inputs: Mapping[str, Any], ctx: ModeContext) -> Prepared[Breakdown]:
        prompt = self._chat_prompt(inputs.get("system_prompt"))
        prepared = build_chat(prompt, history_pairs(inputs.get("history") or []), inputs.get("message", ""),
                              ctx.budget, ctx.count)
        if prompt is not self.prompt:  # the user's own prompt is part of what they shared
            prepared = replace(prepared, inputs={**prepared.inputs, "system_prompt": inputs["system_prompt"]})
        return prepared

    def present(self, prepared: Prepared[Any], raw: str) -> Shown:
        reply = raw[reply_start(raw):].rstrip()
        return Shown(reply, reply)

    def offset(self, raw: str) -> int:
        return reply_start(raw)

    def ended(self, prepared: Prepared[Any], raw: str) -> str | None:
        return None  # ends only where the model or a stop sequence ends it

    def deltas(self, prepared: Prepared[Any], raw: Iterator[str]) -> Iterator[str]:
        """The reply's deltas without the whitespace ``present`` drops: leading whitespace is held until
        the first visible character says where the reply starts, and trailing whitespace is held back
        until text follows it."""
        started, held = False, ""
        for delta in raw:
            text = held + delta
            if not started:
                if not text.strip():
                    held = text
                    continue
                text = text[reply_start(text):]
            kept = text.rstrip()
            held = text[len(kept):]
            if kept:
                started = True
                yield kept

    def restore(self, record: Generation) -> Restored:
        """The conversation as Gradio 6 messages, ending with the shared reply."""
        conversation = []
        for user, reply in record.inputs.get("messages", []):
            conversation += [{"role": "user", "content": user},
                             {"role": "assistant", "content": record.text if reply is None else reply}]
        inputs: dict[str, Any] = {"message": "", "history": conversation}
        if "system_prompt" in record.inputs:
            inputs["system_prompt"] = record.inputs["system_prompt"]
        return Restored(inputs, user_params(record, self.stops))

    def _chat_prompt(self, custom: Any) -> TechAssistantPrompt:
        """The server's prompt, unless the user edited it in the UI or sent their own over the API."""
        if custom is None or custom == self.prompt.text:
            return self.prompt
        try:
            return parse_tech_assistant(check_text("The chat prompt", custom))
        except ConfigError as exc:
            raise InputError(exc.message) from None


def reply_start(raw: str) -> int:
    """Where the reply begins in the model's raw text: after any blank lines, and after the single space
    that follows "Assistant:". Indentation of two or more characters belongs to the reply (its first line
    is code) and is kept. A reply that begins this way starts here again, so a record presents as itself."""
    lead = len(raw) - len(raw.lstrip())
    if lead == len(raw):
        return lead
    line = raw.rfind("\n", 0, lead) + 1
    return line + 1 if lead - line == 1 else line


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
    """Gradio 6 chat messages carry a list of {"type": "text", "text": ...} blocks; any block that is
    not text (or whose text is not a string) is left out."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_block_text(b) for b in content)
    return _block_text(content)


def _block_text(block: Any) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, dict) and block.get("type", "text") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return ""
