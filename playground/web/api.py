"""The JSON API: health, models, and generation (whole or as server-sent events).

Errors leave here as ``{"error": {"type", "message"}}`` with the status that
``web.errors.STATUS`` gives their class. A client that disconnects stops its
generation on the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from playground.checks import MAX_CHECK_CHARS
from playground.errors import (
    CheckUnavailableError,
    InvalidParameterError,
    InvalidTextError,
    NotFoundError,
    PlaygroundError,
    PromptTooLongError,
    ShareNotFoundError,
)
from playground.metrics import Metrics
from playground.modes import validated
from playground.params import MAX_STOP_SEQUENCES, PARAMS
from playground.prompting.budget import check_text
from playground.record import Generation
from playground.service import Playground, Run
from playground.web.bodies import read_json_object
from playground.web.errors import INTERNAL_MESSAGE, error_body, error_response, status_of
from playground.web.limits import RateLimiter, count
from playground.web.schemas import AttributionBody, Options

log = logging.getLogger("playground.web.api")


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(PlaygroundError)
    async def _playground_error(request: Request, exc: PlaygroundError) -> JSONResponse:
        # The route's template, not the path: a path holds share and generation ids, which grant access.
        route = getattr(request.scope.get("route"), "path", "other")
        log.info("%s %s -> %s: %s", request.method, route, status_of(exc), exc.message)
        metrics.errors.labels(exc.kind).inc()
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Routing's own answers (an empty or slash-bearing id, a wrong method) in our error shape too.
        if exc.status_code == 404:
            return error_response(NotFoundError("There is nothing at this address. The API is listed at /api/docs."))
        if exc.status_code == 405:
            return JSONResponse({"error": {"type": "method_not_allowed", "message": "This address does not take "
                                           f"{request.method}. The API is listed at /api/docs."}}, 405)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The detail goes to the log only: no stack trace or server path reaches a user.
        log.exception("unexpected error on %s %s", request.method, getattr(request.scope.get("route"), "path", "other"))
        metrics.errors.labels("internal_error").inc()
        return error_response(PlaygroundError(INTERNAL_MESSAGE))


def health_answer(playground: Playground) -> JSONResponse:
    """200 once the default model can serve (503 with the loading progress before)."""
    slot = playground.slot(None)
    if slot.backend is None:
        status = "failed" if slot.progress.error else "loading"
        return JSONResponse({"status": status, "model": slot.spec.id, "progress": slot.progress.to_dict()}, 503)
    info = slot.info()
    state = info.engine_state
    if state in ("restarting", "failed"):  # the model's process died: coming back, or could not load again
        return JSONResponse({"status": state, "model": slot.spec.id, "progress": slot.progress.to_dict()}, 503)
    body: dict[str, Any] = {"status": "ok", "model": slot.spec.id, "backend": info.backend}
    if playground.checks is not None:
        body["attribution"] = playground.checks.state  # an attribute read: this runs on the event loop
    if info.endpoint is not None:
        # Still 200 when the engine is down: the app serves its UI and shares, and a
        # container restart would not bring the engine back.
        body["engine"] = "reachable" if info.loaded else "unreachable"
    return JSONResponse(body)


def model_entries(playground: Playground) -> list[dict[str, Any]]:
    entries = []
    for slot in playground.slots.values():
        info = slot.info()
        spec = slot.spec
        entries.append({
            "id": spec.id,
            "backend": info.backend,
            "context_length": info.context_length,
            "fim": asdict(spec.fim) if spec.fim else None,
            "loaded": info.loaded,
            "dtype": info.dtype,
            "device_map": info.device_map,
            "placement": info.placement,
            "quantization": info.quantization,
            "revision": info.revision,
            "endpoint": info.endpoint,
            "progress": slot.progress.to_dict(),
            "defaults": spec.defaults.to_dict(),
            "license": spec.license,
            "license_url": spec.license_url,
            "gated": spec.gated,
            "description": spec.description,
        })
    return entries


def _attribution_text(body: dict[str, Any]) -> str:
    text = validated(AttributionBody, body, 'Send {"text": "..."}: the code to check, as a string.',
                     InvalidParameterError).text
    if len(text) > MAX_CHECK_CHARS:
        raise PromptTooLongError(f"The text is {len(text):,} characters; attribution checks at most "
                                 f"{MAX_CHECK_CHARS:,}. Send the part you want checked.")
    try:
        return check_text("The text", text, allow_empty=True)
    except InvalidTextError as exc:
        raise InvalidParameterError(exc.message) from None


def _start(playground: Playground, body: dict[str, Any]) -> tuple[Run, bool]:
    """The run a body asks for, and whether to stream it; the mode checks its own inputs."""
    options = validated(Options, body)
    return playground.start(body.get("mode"), options.model, body, options.params), bool(options.stream)


def _pump(run: Run, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]]) -> None:
    """Drive a run on a worker thread, handing events to the event loop."""

    def put(kind: str, payload: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))
        except RuntimeError:
            pass  # the loop is gone: the client left and nobody is listening

    try:
        for delta, tokens in run.pieces():
            put("delta", (delta, tokens))
        put("done", run.record)
    except PlaygroundError as exc:
        put("error", exc)
    except Exception as exc:  # noqa: BLE001 - logged, then reported without internals
        log.exception("generation crashed")
        put("error", PlaygroundError(f"The generation failed unexpectedly ({type(exc).__name__}). Try again."))


async def events(run: Run) -> AsyncGenerator[tuple[str, Any], None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    worker = threading.Thread(target=_pump, args=(run, loop, queue), name="api-generation", daemon=True)
    worker.start()
    try:
        while True:
            kind, payload = await queue.get()
            # Deltas that piled up while the client was being written to go out as one event:
            # fewer, larger writes keep the stream close to the model's own speed.
            while kind == "delta" and not queue.empty():
                next_kind, next_payload = queue.get_nowait()
                if next_kind != "delta":
                    yield kind, payload
                    kind, payload = next_kind, next_payload
                    break
                payload = _joined(payload, next_payload)
            yield kind, payload
            if kind != "delta":
                return
    finally:
        run.stop()  # finished, or the client went away: either way the model is released


def _joined(first: tuple[str, Any], second: tuple[str, Any]) -> tuple[str, Any]:
    """Two (delta, tokens) pieces as one; tokens are None when not asked for."""
    tokens = None if first[1] is None else first[1] + (second[1] or [])
    return first[0] + second[0], tokens


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def api_router(playground: Playground, generations: RateLimiter) -> APIRouter:
    """The JSON API under /api: what the server is (health, models, parameters) and what it does."""
    router = APIRouter(prefix="/api")
    _state_routes(router, playground)
    _work_routes(router, playground, generations)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str) -> None:
        # Last under /api: an empty or slash-bearing id would otherwise fall through to Gradio's 404.
        raise NotFoundError("There is nothing at this address. The API is listed at /api/docs.")

    return router


def _state_routes(router: APIRouter, playground: Playground) -> None:
    # Both answer on the event loop, never behind user work in the thread pool: they read state only.
    @router.get("/health")
    async def health() -> JSONResponse:
        return health_answer(playground)

    @router.get("/live")
    async def live() -> dict[str, str]:
        """Liveness: the web server answers, whatever the model is doing (loading, restarting)."""
        return {"status": "alive"}

    @router.get("/models")
    def models() -> list[dict[str, Any]]:
        return model_entries(playground)

    @router.get("/params")
    def params() -> dict[str, Any]:
        return {"bounds": {name: p.to_json() for name, p in PARAMS.items() if p.bound},
                "max_stop_sequences": MAX_STOP_SEQUENCES}

    @router.get("/generations/{generation_id}")
    def generation(generation_id: str) -> dict[str, Any]:
        record = playground.generation(generation_id)
        if record is None:
            raise ShareNotFoundError("No recent generation has this id; it may have been evicted. Generate again.")
        return record.to_dict()


def _work_routes(router: APIRouter, playground: Playground, generations: RateLimiter) -> None:
    @router.post("/attribution")
    async def attribution(request: Request) -> JSONResponse:
        """Check any text against the code indexes, in the record's attribution shape."""
        await count(generations, request)
        text = _attribution_text(await read_json_object(request))
        if playground.checks is None:
            raise CheckUnavailableError("Attribution is turned off on this server (--attribution off).")
        report = await run_in_threadpool(playground.checks.check, text)
        if report.unavailable is not None:
            raise CheckUnavailableError(report.unavailable)
        return JSONResponse(report.to_dict())

    @router.post("/generate")
    async def generate(request: Request) -> Any:
        await count(generations, request)
        body = await read_json_object(request)
        # Validating and tokenizing a long prompt takes a while: never on the event loop.
        run, stream = await run_in_threadpool(_start, playground, body)
        if stream:
            headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "X-Generation-Id": run.id}
            return StreamingResponse(_stream_sse(run), media_type="text/event-stream", headers=headers)
        return await _whole(run, request)


async def _stream_sse(run: Run) -> AsyncIterator[str]:
    async for kind, payload in events(run):
        if kind == "delta":
            delta, tokens = payload
            run.mark_sent(delta)
            yield _sse({"delta": delta} if tokens is None else {"delta": delta, "tokens": tokens})
        elif kind == "done":
            yield _sse({"done": True, **payload.to_dict()})
        else:
            yield _sse(error_body(payload))


async def _whole(run: Run, request: Request) -> JSONResponse:
    try:
        return JSONResponse((await finished(run, request)).to_dict())
    except PlaygroundError as exc:
        return error_response(exc)


async def finished(run: Run, request: Request) -> Generation:
    """The run's record once it ends (stopped at once if the client goes away); raises the run's error."""
    stream = events(run)
    watcher = asyncio.create_task(_stop_on_disconnect(request, run))
    try:
        async for kind, payload in stream:
            if kind == "done":
                return payload  # type: ignore[no-any-return]
            if kind == "error":
                raise payload
    finally:
        watcher.cancel()
        await stream.aclose()
    raise PlaygroundError("The generation ended without a result. Try again.")


async def _stop_on_disconnect(request: Request, run: Run) -> None:
    # Wait on receive() (the body is already read: the next message is the disconnect), which sees it
    # whatever middleware stands in front; request.is_disconnected() only polls.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    run.stop()
