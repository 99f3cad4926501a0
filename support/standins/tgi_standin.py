"""STAND-IN: a protocol-faithful stand-in for a server that cannot run here, built
from TGI's documented protocol (text-generation-inference, HTTP API).

It is not TGI and generates no real text: tokens come from a script. What it
reproduces is the wire protocol the playground's TGI backend must handle:

* ``GET /info`` with ``max_input_tokens``, ``max_total_tokens``,
  ``max_stop_sequences`` and friends;
* ``POST /generate`` (JSON), ``POST /generate_stream`` (SSE) and ``POST /``
  with ``"stream": true|false`` (what ``InferenceClient(base_url=...)``
  posts to; non-streaming ``/`` answers a one-element list);
* SSE lines ``data:{json}`` with no space after the colon, ``:`` keep-alive
  comment lines, token events ``{"index", "token": {"id", "text", "logprob",
  "special"}, "generated_text": null, "details": null}``, a final event
  carrying ``generated_text`` and ``details`` (``finish_reason`` length /
  eos_token / stop_sequence, ``generated_tokens``, ``seed``,
  ``input_length``), and no ``[DONE]``;
* TGI's validation rules and messages (0 < top_p < 1, temperature > 0, at
  most ``max_stop_sequences`` stops, prompt + max_new_tokens <= total, a
  ``grammar`` of type json, regex or json_schema); on a stream a validation
  error is an HTTP 200 with one ``error`` event. A grammar is checked, not
  applied: the tokens still come from the script, so a test scripts them to
  follow it;
* error bodies ``{"error", "error_type"}`` (422 validation, 424 generation,
  429 overloaded, 500 incomplete) and the scripted faults of ``common.KINDS``.

Run it alone: ``python -m support.standins.tgi_standin --port 8080 --rate 50``.
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
    Tok,
    add_cli_arguments,
    config_from_cli,
    control_routes,
    hang_forever,
    script_events,
    scripted_logprob,
    serve_forever,
    tracked,
)

VERSION = "3.3.6-standin"


def info_body(state: State) -> dict[str, Any]:
    config = state.config
    return {
        "model_id": config.model_id,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": 2,
        "max_stop_sequences": config.max_stop_sequences,
        "max_input_tokens": config.max_input_tokens,
        "max_total_tokens": config.max_total_tokens,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": VERSION,
        "sha": None,
        "docker_label": None,
    }


def validate(state: State, inputs: Any, parameters: dict[str, Any]) -> tuple[str | None, int, int]:
    """TGI's validation: (error message or None, input tokens, max_new_tokens)."""
    config = state.config
    if not isinstance(inputs, str) or not inputs:
        return "Input validation error: `inputs` cannot be empty", 0, 0
    input_tokens = state.prompt_tokens(inputs)
    checks = [
        ("temperature", lambda v: v > 0, "`temperature` must be strictly positive"),
        ("repetition_penalty", lambda v: v > 0, "`repetition_penalty` must be strictly positive"),
        ("top_p", lambda v: 0 < v < 1, "`top_p` must be > 0.0 and < 1.0"),
        ("top_k", lambda v: v > 0, "`top_k` must be strictly positive"),
        ("max_new_tokens", lambda v: v > 0, "`max_new_tokens` must be strictly positive"),
        ("top_n_tokens", lambda v: 0 <= v <= config.max_top_n_tokens,
         f"`top_n_tokens` must be >= 0 and <= {config.max_top_n_tokens}. Given: {parameters.get('top_n_tokens')}"),
    ]
    for name, ok, message in checks:
        if parameters.get(name) is not None and not ok(parameters[name]):
            return f"Input validation error: {message}", input_tokens, 0
    grammar = parameters.get("grammar")
    kinds = ("json", "regex", "json_schema")
    if grammar is not None and not (isinstance(grammar, dict) and grammar.get("type") in kinds
                                    and isinstance(grammar.get("value"), str | dict)):
        return "Failed to deserialize the JSON body: grammar: unknown variant", input_tokens, 0
    stops = parameters.get("stop") or []
    if len(stops) > config.max_stop_sequences:
        return (
            f"Input validation error: `stop` supports up to {config.max_stop_sequences} stop sequences. "
            f"Given: {len(stops)}",
            input_tokens,
            0,
        )
    if input_tokens > config.max_input_tokens:
        return (
            f"Input validation error: `inputs` must have less than {config.max_input_tokens} tokens. "
            f"Given: {input_tokens}",
            input_tokens,
            0,
        )
    max_new = parameters.get("max_new_tokens")
    if max_new is None:
        max_new = config.max_total_tokens - input_tokens  # what TGI does: run to the full context
    if input_tokens + max_new > config.max_total_tokens:
        return (
            f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {config.max_total_tokens}. "
            f"Given: {input_tokens} `inputs` tokens and {max_new} `max_new_tokens`",
            input_tokens,
            max_new,
        )
    return None, input_tokens, int(max_new)


def _error(message: str, error_type: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status)


def _sse(data: dict[str, Any]) -> bytes:
    return b"data:" + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _token(index: int, tok: Tok) -> dict[str, Any]:
    token_id = 0 if tok.special else 100 + index
    return {"id": token_id, "text": tok.text, "logprob": scripted_logprob(index), "special": tok.special}


def _top_tokens(index: int, tok: Tok, top_n: int) -> list[dict[str, Any]] | None:
    """``top_n_tokens`` alternatives, best first; the scripted token leads them, as under greedy decoding."""
    if not top_n:
        return None
    chosen = _token(index, tok)
    others = [{"id": 10 + k, "text": f"<alt{k}>", "logprob": chosen["logprob"] - k, "special": False}
              for k in range(1, top_n)]
    return [chosen, *others]


class TgiStandin:
    def __init__(self, state: State):
        self.state = state

    async def info(self, request: Request) -> JSONResponse:
        return JSONResponse(info_body(self.state))

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def compat(self, request: Request) -> Response:
        """``POST /``: TGI's compat route, streaming or not by the ``stream`` field."""
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if body.get("stream"):
            return await self._stream(request, body)
        response = await self._generate(request, body)
        if isinstance(response, dict):
            return JSONResponse([response])
        return response

    async def generate(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        response = await self._generate(request, body)
        return JSONResponse(response) if isinstance(response, dict) else response

    async def generate_stream(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        return await self._stream(request, body)

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return Response("Failed to parse the request body as JSON", status_code=422)
        self.state.record(request.url.path, body, {"authorization": request.headers.get("authorization", "")})
        if not isinstance(body, dict) or "inputs" not in body:
            return Response("Failed to deserialize the JSON body: missing field `inputs`", status_code=422)
        return body

    async def _generate(self, request: Request, body: dict[str, Any]) -> dict[str, Any] | Response:
        parameters = body.get("parameters") or {}
        behaviour = self.state.next_behaviour()
        early = await self._early_fault(request, behaviour, body)
        if early is not None:
            return early
        error, input_tokens, max_new = validate(self.state, body["inputs"], parameters)
        if error or behaviour.kind == "validation":
            return _error(error or behaviour.message, "validation", 422)
        record = self._new_record(request, str(body.get("inputs", "")))
        text, tokens, reason = "", [], "length"
        async for event in script_events(self.state, behaviour, record, max_new, parameters.get("stop") or [],
                                       _offset(parameters)):
            if isinstance(event, Err):
                record.outcome = "fault:error_event"
                return _error(event.message, event.error_type, 424 if event.error_type == "generation" else 500)
            if isinstance(event, Tok):
                tokens.append(_token(len(tokens), event))
                text += "" if event.special else event.text
                reason = event.final or reason
        if behaviour.kind != "ok":  # truncate / drop without a stream: an incomplete generation
            record.outcome = f"fault:{behaviour.kind}"
            return _error("Incomplete generation", "incomplete_generation", 500)
        record.outcome = "finished"
        result: dict[str, Any] = {"generated_text": text}
        if parameters.get("details"):
            result["details"] = {
                "finish_reason": reason,
                "generated_tokens": len(tokens),
                "seed": parameters.get("seed"),
                "prefill": [],
                "tokens": tokens,
            }
        return result

    async def _stream(self, request: Request, body: dict[str, Any]) -> Response:
        parameters = body.get("parameters") or {}
        behaviour = self.state.next_behaviour()
        early = await self._early_fault(request, behaviour, body)
        if early is not None:
            return early
        error, input_tokens, max_new = validate(self.state, body["inputs"], parameters)
        record = self._new_record(request, str(body.get("inputs", "")))
        if error or behaviour.kind == "validation":
            record.outcome = "fault:validation"
            message = error or behaviour.message
            return self._sse_response(_once(_sse({"error": message, "error_type": "validation"})), record)
        events = self._events(behaviour, record, input_tokens, max_new, parameters)
        return self._sse_response(events, record)

    async def _events(
        self, behaviour: Behaviour, record: StreamRecord, input_tokens: int, max_new: int, parameters: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        generated, count = "", 0
        async for event in script_events(self.state, behaviour, record, max_new, parameters.get("stop") or [],
                                       _offset(parameters)):
            if isinstance(event, KeepAlive):
                yield b":\n\n"
            elif isinstance(event, Err):
                record.outcome = "fault:error_event"
                yield _sse({"error": event.message, "error_type": event.error_type})
                return
            else:
                count += 1
                generated += "" if event.special else event.text
                data: dict[str, Any] = {
                    "index": count,
                    "token": _token(count, event),
                    "generated_text": None,
                    "details": None,
                    "top_tokens": _top_tokens(count, event, int(parameters.get("top_n_tokens") or 0)),
                }
                if event.final:
                    data["generated_text"] = generated
                    data["details"] = {
                        "finish_reason": event.final,
                        "generated_tokens": count,
                        "seed": parameters.get("seed"),
                        "input_length": input_tokens,
                    }
                    record.outcome = "finished"
                yield _sse(data)
        if record.outcome == "running":
            record.outcome = f"fault:{behaviour.kind}"  # truncate: the body ends without a final event

    def _sse_response(self, body: AsyncIterator[bytes], record: StreamRecord) -> StreamingResponse:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(tracked(record, body), media_type="text/event-stream", headers=headers)

    async def _early_fault(self, request: Request, behaviour: Behaviour, body: dict[str, Any]) -> Response | None:
        if behaviour.kind == "http":
            return _error(behaviour.message, behaviour.error_type, behaviour.status)
        if behaviour.kind == "hang":
            await hang_forever(self._new_record(request, str(body.get("inputs", ""))), request)
            return Response(status_code=499)  # nobody is listening any more
        return None

    def _new_record(self, request: Request, prompt: str = "") -> StreamRecord:
        record = StreamRecord(path=request.url.path, started=time.monotonic(), prompt=prompt)
        self.state.streams.append(record)
        return record


def _offset(parameters: dict[str, Any]) -> int:
    """Where in its script a request starts: a sampled request's seed picks it, so different seeds give
    different text and the same seed the same, as a real sampler would."""
    return int(parameters.get("seed") or 0) if parameters.get("do_sample") else 0


async def _once(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


def create_app(state: State | None = None) -> Starlette:
    standin = TgiStandin(state or State())
    app = Starlette(
        routes=[
            Route("/info", standin.info, methods=["GET"]),
            Route("/health", standin.health, methods=["GET"]),
            Route("/generate", standin.generate, methods=["POST"]),
            Route("/generate_stream", standin.generate_stream, methods=["POST"]),
            Route("/", standin.compat, methods=["POST"]),
            *control_routes(standin.state),
        ]
    )
    app.state.standin = standin.state
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="STAND-IN for a TGI server (protocol only, scripted tokens).")
    add_cli_arguments(parser)
    args = parser.parse_args()
    state = State(config_from_cli(args))
    if args.script:
        state.load_script(json.loads(args.script))
    serve_forever(create_app(state), args.port, args.host)


if __name__ == "__main__":
    main()
