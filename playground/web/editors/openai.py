"""OpenAI's ``/v1/completions`` and ``/v1/models``, and Mistral's ``/v1/fim/completions``, as editors call them.

``/v1/completions`` fills when the body has a ``suffix`` (the ``openai``
client, vLLM-style servers) or a ``prompt`` already wrapped in FIM sentinels
(Continue, llm-ls, Tabby), and completes otherwise. ``/v1/fim/completions``
takes ``prompt`` and ``suffix`` (Mistral's and Continue's FIM providers) and
answers in Mistral's chat-completion shape. Both stream as server-sent events
ending in ``data: [DONE]``; the last event carries ``usage`` and the
``playground`` field (the generation's id, record and attribution).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from playground.errors import InvalidParameterError
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.api import finished
from playground.web.editors.core import (
    APP_EXTRAS,
    EditorAccess,
    EditorCall,
    deltas,
    fill_or_complete,
    first_prompt,
    given,
    playground_field,
    read_call,
)
from playground.web.errors import error_body
from playground.web.limits import RateLimiter

# OpenAI's names (and the extras vLLM and llama.cpp take) → the service's.
_PARAMS = {"max_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
           "n": "n", "stop": "stop", "seed": "seed", "logprobs": "logprobs",
           "repetition_penalty": "repetition_penalty", **APP_EXTRAS, "heal": "heal"}
_MISTRAL = {"max_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "top_p", "stop": "stop",
            "random_seed": "seed", **APP_EXTRAS}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
Answer = Callable[[Generation, str], dict[str, Any]]


def _context(body: Mapping[str, Any]) -> dict[str, Any]:
    """Repository context, on the OpenAI routes a documented extra: ``context``, ``repo_name``, ``filename``."""
    return {key: body[key] for key in ("context", "repo_name", "filename") if body.get(key) is not None}


def completions_call(body: Mapping[str, Any]) -> EditorCall:
    if body.get("echo"):
        raise InvalidParameterError("echo is not served here: the answer holds only the generated text.")
    params = given(body, _PARAMS)
    if "max_new_tokens" not in params and isinstance(body.get("parameters"), Mapping):
        # llm-ls sends TGI's parameters to OpenAI servers too; its max_new_tokens is what the user set.
        params.update(given(body["parameters"], {"max_new_tokens": "max_new_tokens"}))
    if isinstance(params.get("logprobs"), bool):
        params["logprobs"] = 1 if params["logprobs"] else 0
    mode, inputs = fill_or_complete(first_prompt(body.get("prompt", "")), body.get("suffix"), _context(body))
    return EditorCall(mode, inputs, params, bool(body.get("stream")), body.get("model"))


def fim_call(body: Mapping[str, Any]) -> EditorCall:
    suffix = body.get("suffix")
    mode, inputs = fill_or_complete(first_prompt(body.get("prompt", "")), "" if suffix is None else suffix,
                                    _context(body))
    return EditorCall(mode, inputs, given(body, _MISTRAL), bool(body.get("stream")), body.get("model"))


def _finish(reason: str) -> str:
    return {"eos": "stop", "stop": "stop", "length": "length"}.get(reason, reason)


def _logprobs(record: Generation, tokens: list[Any] | None) -> dict[str, Any] | None:
    """OpenAI's legacy logprobs shape from the record's tokens."""
    if record.params.logprobs == 0 or tokens is None:
        return None
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token.text)
    return {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{a.text: a.logprob for a in t.top} for t in tokens], "text_offset": offsets}


def _choices(record: Generation) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(text, finish reason, logprobs) per choice: the candidates best first, or the one generation."""
    if record.candidates:
        return [(c.shown.generated, _finish(c.finish_reason), _logprobs(record, c.tokens)) for c in record.candidates]
    return [(record.generated, _finish(record.finish_reason), _logprobs(record, record.tokens))]


def _usage(record: Generation) -> dict[str, int]:
    prompt, completion = record.usage.prompt_tokens or 0, record.usage.completion_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_answer(record: Generation, model: str) -> dict[str, Any]:
    choices = [{"index": i, "text": text, "logprobs": logprobs, "finish_reason": reason}
               for i, (text, reason, logprobs) in enumerate(_choices(record))]
    return {"id": f"cmpl-{record.id}", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": _usage(record), "playground": playground_field(record)}


def fim_answer(record: Generation, model: str) -> dict[str, Any]:
    choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason}
               for i, (text, reason, _) in enumerate(_choices(record))]
    return {"id": f"fim-{record.id}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": _usage(record), "playground": playground_field(record)}


def _event(data: Mapping[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(run: Run, model: str, answer: Answer, chat_shape: bool) -> AsyncIterator[str]:
    """Deltas as chunks of the dialect's shape; the record's choices whole at the end when there are several."""
    base = {"id": ("fim-" if chat_shape else "cmpl-") + run.id, "created": int(time.time()), "model": model,
            "object": "chat.completion.chunk" if chat_shape else "text_completion"}

    def chunk(index: int, text: str, reason: str | None, **more: Any) -> str:
        choice = {"index": index, "delta": {"content": text}} if chat_shape else {"index": index, "text": text,
                                                                                  "logprobs": None}
        return _event({**base, "choices": [{**choice, "finish_reason": reason}], **more})

    async for kind, payload in deltas(run):
        if kind == "delta":
            yield chunk(0, payload, None)
        elif kind == "error":
            yield _event(error_body(payload))
        else:
            record: Generation = payload
            whole = answer(record, model)
            several = len(whole["choices"]) > 1
            for i, (text, reason, _) in enumerate(_choices(record)):
                yield chunk(i, text if several else "", reason,
                            **({"usage": whole["usage"], "playground": whole["playground"]} if i == 0 else {}))
    yield _event("[DONE]")


def openai_routes(router: APIRouter, playground: Playground, access: EditorAccess, open_limit: RateLimiter) -> None:
    async def serve(request: Request, parse: Callable[[Mapping[str, Any]], EditorCall], answer: Answer,
                    chat_shape: bool) -> Any:
        call, run = await read_call(request, playground, access, open_limit, parse)
        assert run is not None
        model = run.slot.spec.id
        if call.stream:
            return StreamingResponse(_stream(run, model, answer, chat_shape), media_type="text/event-stream",
                                     headers={**STREAM_HEADERS, "X-Generation-Id": run.id})
        return JSONResponse(answer(await finished(run, request), model))

    @router.post("/v1/completions")
    async def completions(request: Request) -> Any:
        """OpenAI completions: a fill when the body has a suffix or FIM sentinels, else a completion."""
        return await serve(request, completions_call, completion_answer, chat_shape=False)

    @router.post("/v1/fim/completions")
    async def fim_completions(request: Request) -> Any:
        """Mistral's FIM completions: prompt (before the hole) and suffix."""
        return await serve(request, fim_call, fim_answer, chat_shape=True)

    @router.get("/v1/models")
    def models() -> dict[str, Any]:
        now = int(time.time())
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": now,
                                            "owned_by": "starcoder-playground"} for model_id in playground.slots]}

