"""TGI's ``/generate`` and ``/generate_stream``, so llm-ls and ``InferenceClient`` work with the app's base URL.

``POST /generate`` also answers as TGI's ``POST /`` does: streamed when the
body says ``"stream": true``, which is what ``InferenceClient(base_url=
".../generate").text_generation(..., stream=True)`` sends. ``inputs`` is a
completion prompt, or a fill when it holds FIM sentinels. Errors leave in
TGI's shape, ``{"error": ..., "error_type": ...}``, as its clients parse it.
Stream events carry each delta as one token event; the deltas are coalesced
text, so ``token.id`` is 0 and ``token.logprob`` is null.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from playground.errors import InvalidParameterError, PlaygroundError
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.api import finished
from playground.web.editors.core import (
    APP_EXTRAS,
    EditorAccess,
    EditorCall,
    deltas,
    fill_or_complete,
    given,
    playground_field,
    read_call,
)
from playground.web.editors.openai import STREAM_HEADERS
from playground.web.errors import status_of
from playground.web.limits import RateLimiter

_PARAMS = {"max_new_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
           "repetition_penalty": "repetition_penalty", "stop": "stop", "seed": "seed", "top_n_tokens": "logprobs",
           **APP_EXTRAS}
_FINISH = {"eos": "eos_token", "stop": "stop_sequence", "length": "length"}


@dataclass(frozen=True)
class TgiOptions:
    """What TGI's parameters ask of the answer's shape."""

    before: str = ""  # return_full_text: the inputs, put before the generated text
    details: bool = False


def generate_call(body: Mapping[str, Any], stream: bool | None = None) -> tuple[EditorCall, TgiOptions]:
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise InvalidParameterError("parameters must be an object, as TGI takes it.")
    inputs = body.get("inputs")
    if not isinstance(inputs, str):
        raise InvalidParameterError("inputs must be a string: the prompt, with FIM sentinels for a fill.")
    params = given(parameters, _PARAMS)
    if parameters.get("do_sample") is False and "temperature" not in params:
        params["temperature"] = 0  # TGI's greedy: no sampling unless asked for
    mode, fields = fill_or_complete(inputs, None)
    options = TgiOptions(inputs if parameters.get("return_full_text") else "", bool(parameters.get("details")))
    return EditorCall(mode, fields, params, bool(body.get("stream")) if stream is None else stream,
                      body.get("model")), options


def _details(record: Generation) -> dict[str, Any]:
    return {"finish_reason": _FINISH.get(record.finish_reason, record.finish_reason),
            "generated_tokens": record.usage.completion_tokens or 0, "seed": record.params.seed,
            "prefill": [], "tokens": []}


def _error(exc: PlaygroundError) -> dict[str, str]:
    return {"error": exc.message, "error_type": exc.kind}


async def _stream(run: Run, prefix: str) -> AsyncIterator[str]:
    index = 0
    async for kind, payload in deltas(run):
        if kind == "error":
            yield f"data: {json.dumps(_error(payload))}\n\n"
            return
        index += 1
        token = {"id": 0, "text": payload if kind == "delta" else "", "logprob": None, "special": False}
        event: dict[str, Any] = {"index": index, "token": token, "generated_text": None, "details": None,
                                 "top_tokens": None}
        if kind == "done":
            event.update(generated_text=prefix + payload.generated, details=_details(payload),
                         playground=playground_field(payload))
        yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


def tgi_routes(router: APIRouter, playground: Playground, access: EditorAccess, open_limit: RateLimiter) -> None:
    async def serve(request: Request, stream: bool | None) -> Response:
        options: list[TgiOptions] = []

        def parse(body: Mapping[str, Any]) -> EditorCall:
            call, found = generate_call(body, stream)
            options.append(found)
            return call

        try:
            call, run = await read_call(request, playground, access, open_limit, parse)
            assert run is not None
            if call.stream:
                return StreamingResponse(_stream(run, options[0].before), media_type="text/event-stream",
                                         headers={**STREAM_HEADERS, "X-Generation-Id": run.id})
            record = await finished(run, request)
        except PlaygroundError as exc:
            return JSONResponse(_error(exc), status_of(exc))
        answer: dict[str, Any] = {"generated_text": options[0].before + record.generated,
                                  "playground": playground_field(record)}
        if options[0].details:
            answer["details"] = _details(record)
        return JSONResponse(answer)

    @router.post("/generate")
    async def generate(request: Request) -> Response:
        """TGI's generate (and its POST /: streamed when the body says "stream": true)."""
        return await serve(request, None)

    @router.post("/generate_stream")
    async def generate_stream(request: Request) -> Response:
        """TGI's generate_stream: server-sent token events, the last with generated_text and details."""
        return await serve(request, True)

