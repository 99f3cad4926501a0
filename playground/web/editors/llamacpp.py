"""llama.cpp's ``POST /infill``, as llama.vim and llama.vscode call it.

The hole lies between ``input_prefix`` + ``prompt`` (the editors send the
cursor's line up to the cursor as ``prompt``) and ``input_suffix``;
``input_extra`` chunks (``{filename, text}``) are the repository context.
``n_predict: 0`` is the editors' cache-warming call: the prompt is built and
checked, nothing is generated or recorded. The answer has llama.cpp's fields
that the editors read (``content``, ``stop``, ``timings``, ``tokens_*``);
streamed, each event is ``{"content": delta, "stop": false}`` and the last
one the whole answer with ``"stop": true``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from playground.errors import InvalidParameterError
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.api import finished
from playground.web.editors.core import (
    APP_EXTRAS,
    EditorAccess,
    EditorCall,
    deltas,
    given,
    playground_field,
    read_call,
)
from playground.web.editors.openai import STREAM_HEADERS
from playground.web.errors import error_body
from playground.web.limits import RateLimiter

_PARAMS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop": "stop", "seed": "seed",
           "repeat_penalty": "repetition_penalty", "n_probs": "logprobs", **APP_EXTRAS}
_STOP_TYPE = {"eos": "eos", "stop": "word", "length": "limit"}


def infill_call(body: Mapping[str, Any]) -> EditorCall:
    fields = {name: body.get(name, "") for name in ("input_prefix", "input_suffix", "prompt")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise InvalidParameterError("input_prefix, input_suffix and prompt must be strings.")
    extra = body.get("input_extra") or []
    if not isinstance(extra, list) or not all(isinstance(chunk, Mapping) for chunk in extra):
        raise InvalidParameterError('input_extra must be a list of {"filename": ..., "text": ...} chunks.')
    params = given(body, _PARAMS)
    n_predict = body.get("n_predict", -1)
    if isinstance(n_predict, int) and not isinstance(n_predict, bool) and n_predict > 0:
        params["max_new_tokens"] = n_predict  # -1 (as much as it likes) means the model's default here
    inputs: dict[str, Any] = {"prefix": fields["input_prefix"] + fields["prompt"], "suffix": fields["input_suffix"]}
    if extra:
        inputs["context"] = [{"filename": chunk.get("filename", ""), "text": chunk.get("text", "")} for chunk in extra]
    return EditorCall("fill", inputs, params, bool(body.get("stream")), body.get("model"), warm_only=n_predict == 0)


def infill_answer(record: Generation) -> dict[str, Any]:
    prompt_n, predicted_n = record.usage.prompt_tokens or 0, record.usage.completion_tokens or 0
    first_ms, total_ms = record.timings.ttft_ms or 0.0, record.timings.total_ms or 0.0
    predicted_ms = max(total_ms - first_ms, 0.0)
    return {
        "content": record.generated, "stop": True, "model": record.model, "id_slot": 0,
        "tokens_predicted": predicted_n, "tokens_evaluated": prompt_n, "tokens_cached": 0, "truncated": False,
        "stop_type": _STOP_TYPE.get(record.finish_reason, record.finish_reason), "stopping_word": "",
        "timings": {"prompt_n": prompt_n, "prompt_ms": first_ms, "predicted_n": predicted_n,
                    "predicted_ms": predicted_ms,
                    "predicted_per_second": predicted_n / (predicted_ms / 1000) if predicted_ms else 0.0},
        "playground": playground_field(record),
    }


def _warm_answer() -> dict[str, Any]:
    return {"content": "", "stop": True, "tokens_predicted": 0, "tokens_evaluated": 0, "tokens_cached": 0,
            "truncated": False, "stop_type": "limit", "stopping_word": "", "timings": {"predicted_n": 0}}


async def _stream(run: Run) -> AsyncIterator[str]:
    async for kind, payload in deltas(run):
        data: dict[str, Any]
        if kind == "delta":
            data = {"content": payload, "stop": False, "id_slot": 0, "index": 0}
        elif kind == "done":
            data = {**infill_answer(payload), "content": ""}  # the text went out in the deltas
        else:
            data = error_body(payload)
        yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def llamacpp_routes(router: APIRouter, playground: Playground, access: EditorAccess, open_limit: RateLimiter) -> None:
    @router.post("/infill")
    async def infill(request: Request) -> Response:
        """llama.cpp's infill: input_prefix + prompt, the hole, input_suffix; input_extra as context."""
        call, run = await read_call(request, playground, access, open_limit, infill_call)
        if run is None:
            return JSONResponse(_warm_answer())
        if call.stream:
            return StreamingResponse(_stream(run), media_type="text/event-stream",
                                     headers={**STREAM_HEADERS, "X-Generation-Id": run.id})
        return JSONResponse(infill_answer(await finished(run, request)))
