"""STAND-IN: a protocol-faithful stand-in for a server that cannot run here, built
from the documented OpenAI-compatible completions protocol as vLLM serves it.

It is not vLLM and generates no real text: tokens come from a script
(``support.standins.common``). What it reproduces is the wire protocol:

* ``GET /v1/models``: ``{"object": "list", "data": [{"id", "object": "model",
  "owned_by", "max_model_len"}]}`` (``max_model_len`` is vLLM's addition);
* ``POST /v1/completions`` with a raw ``prompt``; streamed as ``data: {json}``
  lines (with a space) of ``{"id", "object": "text_completion", "created",
  "model", "choices": [{"index": 0, "text", "logprobs", "finish_reason":
  null|"length"|"stop", "stop_reason"}]}``, an optional usage chunk
  (``stream_options.include_usage``), then ``data: [DONE]``;
* ``logprobs`` (0-20) in the legacy completions shape, one token per chunk:
  ``{"tokens", "token_logprobs", "top_logprobs": [{text: logprob}],
  "text_offset"}``, where the top entries hold the sampled token besides the
  k best (so up to k + 1), as vLLM's do; ``n`` choices, each streamed with
  its own ``index`` (one after another here; vLLM interleaves them);
* vLLM-style validation (context length, top_p in (0, 1], temperature >= 0,
  unknown model) as HTTP 400/404 with ``{"error": {"message", "type",
  "param", "code"}}``; stop strings are cut from the text, like vLLM does;
* the scripted faults of ``common.KINDS`` where they make sense (429, 500,
  an in-stream error event, a stream cut before ``[DONE]``, stalls).

Run it alone: ``python -m support.standins.openai_standin --port 8000 --rate 50``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from support.standins.common import (
    Behaviour,
    Err,
    KeepAlive,
    State,
    StreamRecord,
    add_cli_arguments,
    config_from_cli,
    control_routes,
    hang_forever,
    script_events,
    scripted_logprob,
    serve_forever,
    tracked,
)

_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError", 500: "InternalServerError"}


def _error(message: str, status: int) -> JSONResponse:
    body = {"message": message, "type": _ERROR_TYPES.get(status, "InternalServerError"), "param": None, "code": status}
    return JSONResponse({"error": body}, status_code=status)


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _logprobs(token: str, offset: int, position: int, wanted: int | None) -> dict[str, Any] | None:
    """The legacy completions ``logprobs`` of one token (vLLM keeps a stop-cut token whole here)."""
    if wanted is None or not token:
        return None
    logprob = scripted_logprob(position)
    top = {token: logprob, **{f"<alt{k}>": logprob - k for k in range(1, wanted)}}
    return {"tokens": [token], "token_logprobs": [logprob], "top_logprobs": [top], "text_offset": [offset]}


def validate(state: State, body: dict[str, Any]) -> tuple[JSONResponse | None, int, int]:
    """vLLM's checks: (error response or None, prompt tokens, max_tokens)."""
    config = state.config
    if body.get("model") != config.model_id:
        return _error(f"The model `{body.get('model')}` does not exist.", 404), 0, 0
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return _error("prompt must be a string", 400), 0, 0
    prompt_tokens = state.prompt_tokens(prompt)
    max_len = config.max_total_tokens
    temperature, top_p = body.get("temperature", 1.0), body.get("top_p", 1.0)
    if temperature is not None and temperature < 0:
        return _error(f"temperature must be non-negative, got {temperature}.", 400), prompt_tokens, 0
    if top_p is not None and not 0 < top_p <= 1:
        return _error(f"top_p must be in (0, 1], got {top_p}.", 400), prompt_tokens, 0
    top_k = body.get("top_k")
    if top_k is not None and top_k not in (0, -1) and top_k < 1:
        return _error(f"top_k must be 0 (disable), -1 (disable), or at least 1, got {top_k}.", 400), prompt_tokens, 0
    logprobs, n = body.get("logprobs"), body.get("n", 1)
    if logprobs is not None and not 0 <= logprobs <= 20:
        return _error(f"logprobs must be between 0 and 20, got {logprobs}.", 400), prompt_tokens, 0
    if not isinstance(n, int) or n < 1:
        return _error(f"n must be at least 1, got {n}.", 400), prompt_tokens, 0
    if prompt_tokens >= max_len:
        message = (
            f"This model's maximum context length is {max_len} tokens. However, your request has "
            f"{prompt_tokens} input tokens. Please reduce the length of the input messages."
        )
        return _error(message, 400), prompt_tokens, 0
    max_tokens = body.get("max_tokens") or 16  # the OpenAI API's default
    if max_tokens < 1:
        return _error(f"max_tokens must be at least 1, got {max_tokens}.", 400), prompt_tokens, 0
    if prompt_tokens + max_tokens > max_len:
        message = (
            f"This model's maximum context length is {max_len} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). "
            "Please reduce the length of the messages or completion."
        )
        return _error(message, 400), prompt_tokens, max_tokens
    return None, prompt_tokens, int(max_tokens)


class OpenAiStandin:
    def __init__(self, state: State):
        self.state = state
        self.counter = 0

    async def models(self, request: Request) -> JSONResponse:
        config = self.state.config
        entry = {
            "id": config.model_id,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "vllm",
            "root": config.model_id,
            "parent": None,
            "max_model_len": config.max_total_tokens,
        }
        return JSONResponse({"object": "list", "data": [entry]})

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error("Invalid JSON body", 400)
        self.state.record(request.url.path, body, {"authorization": request.headers.get("authorization", "")})
        behaviour = self.state.next_behaviour()
        if behaviour.kind == "http":
            return _error(behaviour.message, behaviour.status)
        if behaviour.kind == "hang":
            await hang_forever(self._new_record(request, str(body.get("prompt", ""))), request)
            return Response(status_code=499)
        error, prompt_tokens, max_tokens = validate(self.state, body)
        if error is not None:
            return error
        if behaviour.kind == "validation":
            return _error(behaviour.message, 400)
        self.counter += 1
        record = self._new_record(request, str(body.get("prompt", "")))
        events = self._events(behaviour, record, body, prompt_tokens, max_tokens)
        if body.get("stream"):
            headers = {"Cache-Control": "no-cache"}
            return StreamingResponse(tracked(record, events), media_type="text/event-stream", headers=headers)
        return await self._collect(events, record)

    async def _collect(self, events: AsyncIterator[bytes], record: StreamRecord) -> Response:
        """Non-streaming: the same events folded into one completion object."""
        texts: dict[int, str] = {}
        finishes: dict[int, str] = {}
        usage = None
        async for raw in events:
            if not raw.startswith(b"data: {"):
                continue
            data = json.loads(raw[len(b"data: ") :])
            if "error" in data:
                return _error(data["error"]["message"], 500)
            for choice in data["choices"]:
                index = choice["index"]
                texts[index] = texts.get(index, "") + choice["text"]
                if choice["finish_reason"]:
                    finishes[index] = choice["finish_reason"]
            usage = data.get("usage") or usage
        if not finishes or set(finishes) != set(texts):
            return _error("Incomplete generation", 500)
        choices = [{"index": i, "text": texts[i], "logprobs": None, "finish_reason": finishes[i]}
                   for i in sorted(texts)]
        return JSONResponse({"id": "cmpl-standin", "object": "text_completion", "choices": choices, "usage": usage})

    async def _events(
        self, behaviour: Behaviour, record: StreamRecord, body: dict[str, Any], prompt_tokens: int, max_tokens: int
    ) -> AsyncIterator[bytes]:
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        base = {"id": f"cmpl-standin-{self.counter}", "object": "text_completion", "created": int(time.time())}
        base["model"] = body["model"]
        count = 0
        for index in range(body.get("n", 1)):
            async for item in self._choice(behaviour, record, body, max_tokens, stops, index):
                if isinstance(item, bytes):  # an error event or a keep-alive
                    yield item
                    if item.startswith(b"data: [DONE]"):
                        return
                    continue
                count += 1
                yield _sse({**base, "choices": [item], "usage": None})
        if count and record.token_times and behaviour.kind == "ok":
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count,
                         "total_tokens": prompt_tokens + count}
                yield _sse({**base, "choices": [], "usage": usage})
            record.outcome = "finished"
            yield b"data: [DONE]\n\n"
        elif record.outcome == "running":
            record.outcome = f"fault:{behaviour.kind}"  # truncate: no finish_reason, no [DONE]

    async def _choice(self, behaviour: Behaviour, record: StreamRecord, body: dict[str, Any], max_tokens: int,
                      stops: list[str], index: int) -> AsyncIterator[dict[str, Any] | bytes]:
        """One choice's chunks; a sampled request's seed (plus the choice's index) picks its script."""
        sampled = (body.get("temperature") or 0) > 0
        offset = (int(body.get("seed") or 0) + 3 * index) if sampled else 0
        generated = ""
        async for event in script_events(self.state, behaviour, record, max_tokens, stops, offset):
            if isinstance(event, KeepAlive):
                yield b": keep-alive\n\n"
                continue
            if isinstance(event, Err):
                record.outcome = "fault:error_event"
                yield _sse({"error": {"message": event.message, "type": "InternalServerError", "code": 500}})
                yield b"data: [DONE]\n\n"
                return
            token = "" if event.special else event.text
            text, finish, stop_reason = token, None, None
            if event.final == "stop_sequence":
                full = generated + text
                cut = min(full.find(s) for s in stops if s in full)
                text, finish = full[len(generated) : max(cut, len(generated))], "stop"
                stop_reason = next(s for s in stops if full.find(s) == cut)
            elif event.final:
                finish = "length" if event.final == "length" else "stop"
            logprobs = _logprobs(token, len(generated), len(record.token_times), body.get("logprobs"))
            generated += text
            yield {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish,
                   "stop_reason": stop_reason}

    def _new_record(self, request: Request, prompt: str = "") -> StreamRecord:
        record = StreamRecord(path=request.url.path, started=time.monotonic(), prompt=prompt)
        self.state.streams.append(record)
        return record


def create_app(state: State | None = None) -> Starlette:
    standin = OpenAiStandin(state or State())
    app = Starlette(
        routes=[
            Route("/v1/models", standin.models, methods=["GET"]),
            Route("/health", standin.health, methods=["GET"]),
            Route("/v1/completions", standin.completions, methods=["POST"]),
            *control_routes(standin.state),
        ]
    )
    app.state.standin = standin.state
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="STAND-IN for an OpenAI-compatible completions server (vLLM-like).")
    add_cli_arguments(parser)
    args = parser.parse_args()
    state = State(config_from_cli(args))
    if args.script:
        state.load_script(json.loads(args.script))
    serve_forever(create_app(state), args.port, args.host)


if __name__ == "__main__":
    main()
