"""The editor routes: one deployment that speaks each editor's fill-in-the-middle dialect.

OpenAI's ``/v1/completions`` and ``/v1/models``, Mistral's ``/v1/fim/completions``,
TGI's ``/generate`` and ``/generate_stream``, and llama.cpp's ``/infill``, each
a thin reader of its own request and writer of its own answer around the same
service as the UI (see ``core``). With ``--api-key`` they need a key; the UI
and ``/api`` never do.
"""

from __future__ import annotations

from fastapi import APIRouter

from playground.service import Playground
from playground.web.editors.core import EditorAccess
from playground.web.editors.llamacpp import llamacpp_routes
from playground.web.editors.openai import openai_routes
from playground.web.editors.tgi import tgi_routes
from playground.web.limits import RateLimiter


def editor_router(playground: Playground, open_limit: RateLimiter) -> APIRouter:
    """The routes, with the keys from the settings (read once, here) and ``open_limit`` for keyless use;
    the keys' limits count where ``open_limit`` counts (this process, or the shared database)."""
    settings = playground.settings
    access = EditorAccess.of(settings.editor_keys(), settings.limits.per_key_per_minute, open_limit.shared)
    router = APIRouter(tags=["editors"])
    openai_routes(router, playground, access, open_limit)
    tgi_routes(router, playground, access, open_limit)
    llamacpp_routes(router, playground, access, open_limit)
    return router


__all__ = ["EditorAccess", "editor_router"]
