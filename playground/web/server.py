"""The one FastAPI app: REST routes, share pages and /metrics first, then the Gradio UI at ``/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import gradio as gr
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from playground import __version__
from playground.service import Playground
from playground.web.api import api_router, install_error_handlers
from playground.web.limits import WebLimits
from playground.web.shares import SHARE_HEADERS, share_router
from playground.web.ui import CSS, HEAD, build_ui


def _route_group(path: str) -> str:
    """A bounded label set for metrics: never the raw path, which holds ids."""
    for prefix in ("/api/generate", "/api/shares", "/api/health", "/api/models", "/s/", "/metrics", "/gradio_api"):
        if path.startswith(prefix):
            return prefix.strip("/")
    return "page" if path == "/" else "other"


def create_app(playground: Playground) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        playground.shutdown()  # stop in-flight generations, close the database cleanly

    app = FastAPI(title="StarCoder Playground", version=__version__, docs_url="/api/docs", redoc_url=None,
                  lifespan=lifespan)
    install_error_handlers(app, playground.metrics)
    settings = playground.settings
    limits = WebLimits.from_settings(settings.limits, settings.forwarded_for)
    app.include_router(share_router(playground, limits))
    app.include_router(api_router(playground, limits.generations))  # last: its catch-all answers unknown /api/ paths

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(playground.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def headers_and_counts(request: Request, call_next: Any) -> Any:
        if request.url.path.rstrip("/").endswith("/gradio_api/upload"):
            # No component takes files: Gradio's upload route would let anyone fill the temp folder.
            response: Response = JSONResponse({"error": {"type": "uploads_off", "message": "This app takes no "
                                               "file uploads. Paste text into the editors instead."}}, 403)
        else:
            response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if "share" in request.query_params or request.url.path.startswith(("/s/", "/api/shares")):
            for name, value in SHARE_HEADERS.items():
                response.headers.setdefault(name, value)
        playground.metrics.requests.labels(_route_group(request.url.path), str(response.status_code)).inc()
        return response

    demo = build_ui(playground, limits)
    demo.queue(max_size=playground.settings.max_queue, default_concurrency_limit=1)
    # Gradio's own routes are mounted last so they cannot shadow /api/*.
    mounted = gr.mount_gradio_app(app, demo, path="/", css=CSS, head=HEAD, footer_links=["api"], ssr_mode=False)
    return cast(FastAPI, mounted)
