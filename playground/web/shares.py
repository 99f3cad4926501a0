"""Share routes: create, read and delete shared generations, and the pages a link opens.

A share is made only from a generation this server produced and still holds
(``Playground.recent``); clients send an id, never content. Unknown and
deleted ids get the same bytes. Share pages and JSON are never indexed.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from playground.config import Settings
from playground.errors import ShareNotFoundError, StoreError
from playground.modes import validated
from playground.service import Playground
from playground.store import NOT_FOUND_MESSAGE
from playground.web.bodies import read_json_object
from playground.web.limits import RateLimiter, WebLimits
from playground.web.schemas import ShareBody

SHARE_HEADERS = {
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",  # a share id in a Referer header would leak the link
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}


def share_url(settings: Settings, request: Request, share_id: str) -> str:
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + f"/s/{share_id}"


_DELETE_PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; connect-src 'self'; style-src 'unsafe-inline'"
_NOT_FOUND_CSP = "default-src 'none'; style-src 'unsafe-inline'"  # a page of text and one link: no script at all


def _delete_page(share_id: str) -> str:
    """A page whose button sends DELETE with the token from the URL fragment (never sent to servers)."""
    safe_id = html.escape(share_id)
    return f"""<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Delete shared generation</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Delete shared generation</h1><p>This removes <code>/s/{safe_id}</code> for everyone. It cannot be undone.</p>
<button id="delete">Delete it</button><p id="result" role="status"></p>
<script>
document.getElementById("delete").onclick = async () => {{
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const r = await fetch("/api/shares/{safe_id}", {{method: "DELETE", headers: {{Authorization: "Bearer " + token}}}});
  const body = r.status === 204 ? null : await r.json();
  document.getElementById("result").textContent = r.status === 204 ? "Deleted." : body.error.message;
}};
</script></body></html>"""


def not_found() -> JSONResponse:
    # One body for unknown, deleted and malformed ids: nothing to learn by probing.
    return JSONResponse({"error": {"type": "not_found", "message": NOT_FOUND_MESSAGE}}, 404, headers=SHARE_HEADERS)


def not_found_page() -> HTMLResponse:
    """What a browser gets for a link to a share that is not there: a page, with the same 404 status."""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shared generation not found</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>Shared generation not found</h1><p>{html.escape(NOT_FOUND_MESSAGE)}</p>
<p><a href="/">Open the playground</a></p></body></html>"""
    return HTMLResponse(body, 404, headers={**SHARE_HEADERS, "Content-Security-Policy": _NOT_FOUND_CSP})


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def share_router(playground: Playground, limits: WebLimits) -> APIRouter:
    """The share JSON routes and the pages a share link opens."""
    router = APIRouter()
    _json_routes(router, playground, limits)
    _page_routes(router, playground, limits.share_lookups)
    return router


def _json_routes(router: APIRouter, playground: Playground, limits: WebLimits) -> None:
    settings = playground.settings
    creations, lookups = limits.share_creations, limits.share_lookups

    @router.post("/api/shares")
    async def create(request: Request) -> JSONResponse:
        creations.check(request)
        body = validated(ShareBody, await read_json_object(request),
                         'Send {"generation_id": "..."}: the id returned by /api/generate or shown in the UI.')
        created = await run_in_threadpool(playground.share, body.generation_id)  # a database write: off the loop
        url = share_url(settings, request, created.id)
        if not created.is_new:  # shared before: the same link; its delete token was shown then
            return JSONResponse({"id": created.id, "url": url}, 200, headers=SHARE_HEADERS)
        payload = {"id": created.id, "url": url, "delete_token": created.delete_token}
        return JSONResponse(payload, 201, headers=SHARE_HEADERS)

    @router.get("/api/shares/{share_id}")
    def read(share_id: str, request: Request) -> Response:
        lookups.check(request)
        try:
            generation = playground.open_share(share_id)
        except ShareNotFoundError:
            return not_found()
        return JSONResponse(generation.to_dict(), headers=SHARE_HEADERS)

    @router.delete("/api/shares/{share_id}")
    def delete(share_id: str, request: Request) -> Response:
        lookups.check(request)
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        try:
            playground.delete_share(share_id, token)
        except ShareNotFoundError:
            return not_found()
        return Response(status_code=204, headers=SHARE_HEADERS)


def _page_routes(router: APIRouter, playground: Playground, lookups: RateLimiter) -> None:
    @router.get("/s/{share_id}")
    def page(share_id: str, request: Request) -> Response:
        lookups.check(request)
        try:
            playground.open_share(share_id)
        except ShareNotFoundError:
            return not_found_page() if _wants_html(request) else not_found()
        except StoreError:
            pass  # let the app page explain; the share may load once the store recovers
        candidate = request.query_params.get("candidate", "")
        opened = f"&candidate={candidate}" if candidate.isascii() and candidate.isdigit() and len(candidate) < 3 else ""
        return RedirectResponse(f"/?share={share_id}{opened}", 303, headers=SHARE_HEADERS)

    @router.get("/s/{share_id}/delete")
    def delete_page(share_id: str) -> HTMLResponse:
        return HTMLResponse(_delete_page(share_id), headers={**SHARE_HEADERS, "Content-Security-Policy":
                            _DELETE_PAGE_CSP})


def share_links(settings: Settings, request: Any, share_id: str, delete_token: str) -> tuple[str, str]:
    url = share_url(settings, request, share_id)
    return url, f"{url}/delete#token={delete_token}"
