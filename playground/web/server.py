"""The one FastAPI app: REST routes, share pages and /metrics first, then the Gradio UI at ``/``."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import gradio as gr
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from playground import __version__
from playground.service import Playground
from playground.store.limits import SharedCounts
from playground.web.api import api_router, install_error_handlers
from playground.web.editors import editor_router
from playground.web.limits import WebLimits, client_of
from playground.web.schemas import AttributionBody, ShareBody, document, generate_body
from playground.web.shares import SHARE_HEADERS, share_router
from playground.web.ui import CSS, HEAD, build_ui


def _route_group(path: str) -> str:
    """A bounded label set for metrics: never the raw path, which holds ids."""
    for prefix in ("/api/generate", "/api/shares", "/api/health", "/api/models", "/s/", "/metrics", "/gradio_api",
                   "/v1/", "/generate", "/infill"):
        if path.startswith(prefix):
            return prefix.strip("/")
    return "page" if path == "/" else "other"


# Pages load images and media only from the app itself: model output or a shared chat cannot make a
# visitor's browser fetch an attacker's URL. Scripts and styles are left to Gradio, which inlines its own.
_ALWAYS_OPEN = ("/api/live", "/api/health")  # probes answer whatever one client holds open
PAGE_CSP = "img-src 'self' data: blob:; media-src 'self' data: blob:; object-src 'none'; base-uri 'self'"


class EdgeHeaders:
    """Every HTTP answer gets ``nosniff`` (and the share headers on share pages, and a CSP on HTML pages)
    and is counted; Gradio's upload route answers 403. Plain ASGI, not ``@app.middleware("http")``: that
    one passes every chunk of a streamed answer through an extra task and memory stream, a cost paid per
    token (profiled)."""

    def __init__(self, app: ASGIApp, playground: Playground):
        self.app, self.playground = app, playground
        self.open: Counter[str] = Counter()  # requests open per client, for ``limits.open_per_client``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        share = "share" in QueryParams(scope.get("query_string", b"")) or path.startswith(("/s/", "/api/shares"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGE_CSP)  # a page's own stricter one stays
                if share:
                    for name, value in SHARE_HEADERS.items():
                        headers.setdefault(name, value)
                self.playground.metrics.requests.labels(_route_group(path), str(message["status"])).inc()
            await send(message)

        if path.rstrip("/").endswith("/gradio_api/upload"):
            # No component takes files: Gradio's upload route would let anyone fill the temp folder.
            refused = JSONResponse({"error": {"type": "uploads_off", "message": "This app takes no file uploads. "
                                              "Paste text into the editors instead."}}, 403)
            await refused(scope, receive, send_with_headers)
            return
        if path in _ALWAYS_OPEN:
            await self.app(scope, receive, send_with_headers)
            return
        await self._counted(scope, receive, send_with_headers)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, unless its client already has ``open_per_client`` open (slow bodies, streams): one
        address cannot hold every connection. Counted on the event loop, so no lock is needed."""
        settings = self.playground.settings
        cap = settings.limits.open_per_client
        client = client_of(Request(scope), settings.forwarded_for)
        if cap and self.open[client] >= cap:
            refused = JSONResponse({"error": {"type": "too_many_open", "message": (
                f"This address has {cap} requests open already. Wait for some to finish, then try again.")}}, 429)
            await refused(scope, receive, send)
            return
        self.open[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]


def create_app(playground: Playground) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if playground.checks is not None:
            # Only now, with the UI built: building the default index holds the GIL for seconds on a
            # first start, and the first answer (/api/live) should not wait behind it.
            playground.checks.start()
        yield
        playground.shutdown()  # stop in-flight generations, close the database cleanly

    app = FastAPI(title="StarCoder Playground", version=__version__, docs_url="/api/docs", redoc_url=None,
                  lifespan=lifespan)
    install_error_handlers(app, playground.metrics)
    settings = playground.settings
    shared = SharedCounts(playground.store.database) if playground.store and settings.limits_shared else None
    limits = WebLimits.from_settings(settings.limits, settings.forwarded_for, shared)
    app.include_router(share_router(playground, limits))
    app.include_router(editor_router(playground, limits.generations))
    app.include_router(api_router(playground, limits.generations))  # last: its catch-all answers unknown /api/ paths
    document(app, {"/api/generate": generate_body(playground.modes), "/api/shares": ShareBody,
                   "/api/attribution": AttributionBody})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(playground.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(EdgeHeaders, playground=playground)

    demo = build_ui(playground, limits)
    demo.queue(max_size=playground.settings.max_queue, default_concurrency_limit=1)
    # Gradio's own routes are mounted last so they cannot shadow /api/*.
    mounted = gr.mount_gradio_app(app, demo, path="/", css=CSS, head=HEAD, footer_links=["api"], ssr_mode=False)
    return cast(FastAPI, mounted)
