"""The one FastAPI app: REST routes first, then the Gradio UI mounted at ``/``."""

from __future__ import annotations

import gradio as gr
from typing import Any

from fastapi import FastAPI, Request

from playground import __version__
from playground.service import Playground
from playground.web.api import api_router, install_error_handlers
from playground.web.shares import SHARE_HEADERS, share_router
from playground.web.ui import HEAD, build_ui
from playground.web.ui_parts import CSS


def create_app(playground: Playground) -> FastAPI:
    app = FastAPI(title="StarCoder Playground", version=__version__, docs_url="/api/docs", redoc_url=None)
    install_error_handlers(app)
    app.include_router(api_router(playground))
    app.include_router(share_router(playground))

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if "share" in request.query_params or request.url.path.startswith(("/s/", "/api/shares")):
            for name, value in SHARE_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    demo = build_ui(playground)
    demo.queue(max_size=playground.settings.max_queue, default_concurrency_limit=1)
    # Gradio's own routes are mounted last so they cannot shadow /api/*.
    return gr.mount_gradio_app(app, demo, path="/", css=CSS, head=HEAD, footer_links=["api"], ssr_mode=False)
