"""Request bodies read with bounds: size, time, nesting depth and number size, so no JSON reaches a 500.

Python's own parser already refuses integers longer than 4,300 digits and
recurses until it runs out of stack on deep nesting; both become a 400 here,
as does a body of the wrong shape. Strings are validated where they are used.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request

from playground.errors import BodyTimeoutError, InputError, PromptTooLongError

MAX_BODY_BYTES = 4 * 1024 * 1024  # a 200,000-character fill in JSON fits many times over
BODY_READ_TIMEOUT_S = 30.0  # a real client sends its body at once; a trickle this slow is holding a connection
MAX_DEPTH = 32  # the API's deepest shape (messages → message → content blocks) is 4 levels


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await _bounded_body(request)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise InputError("The request body must be a JSON object, e.g. {\"mode\": \"complete\", "
                         "\"prompt\": \"def f():\"}.") from None
    if not isinstance(body, dict):
        raise InputError("The request body must be a JSON object.")
    if _depth(body) > MAX_DEPTH:
        raise InputError(f"The request body is nested more than {MAX_DEPTH} levels deep; no field needs that.")
    return body


async def _bounded_body(request: Request) -> bytes:
    """The body, refused before it is read when its declared length is over the limit, and while it
    streams in when it goes over (a chunked body declares none): memory never holds more than the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):  # a body trickled in byte by byte holds a connection
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large(size, more=True)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeoutError(f"The request body did not arrive within {BODY_READ_TIMEOUT_S:g} s "
                               f"({size:,} bytes came). Send it at once.") from None
    return b"".join(chunks)


def _too_large(size: int, more: bool = False) -> PromptTooLongError:
    return PromptTooLongError(f"The request body is {'over ' if more else ''}{size:,} bytes; the limit is "
                              f"{MAX_BODY_BYTES:,}. Send less text.")


def _depth(value: Any) -> int:
    """Nesting depth, without recursion (the value may be as deep as the parser allowed)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest
