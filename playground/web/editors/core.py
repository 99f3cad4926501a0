"""What every editor dialect shares: its request turned into a mode's inputs, the run, and the extra field.

A dialect (OpenAI, Mistral's FIM, TGI, llama.cpp) reads its own body into an
``EditorCall``: fill when the client sends a suffix or a prompt already wrapped
in FIM sentinels (read back by ``prompting.fim_text``, then rendered with the
served model's own template), complete otherwise. From there the call is an
ordinary generation: the same modes, limits, attribution and records as the
UI, so every completion can be shared.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from playground.errors import InvalidParameterError, KeyRequiredError
from playground.prompting.fim_text import read_templated
from playground.record import Generation
from playground.service import Playground, Run
from playground.store.limits import SharedCounts
from playground.web.api import events
from playground.web.bodies import read_json_object
from playground.web.limits import RateLimiter

# The app's own fill settings, which every dialect accepts under the app's names.
APP_EXTRAS = {"end_at_scope": "end_at_scope", "no_empty_fill": "no_empty_fill", "stop_loops": "stop_loops"}


@dataclass(frozen=True)
class EditorCall:
    """One editor request, in the service's terms."""

    mode: str  # "fill" or "complete"
    inputs: dict[str, Any]
    params: dict[str, Any]  # the service's parameter names
    stream: bool = False
    model: str | None = None
    warm_only: bool = False  # llama.cpp's n_predict 0: check the prompt, generate nothing


def fill_or_complete(prompt: str, suffix: str | None,
                     context: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The mode and inputs for a prompt (maybe templated) and an optional suffix."""
    if not isinstance(prompt, str) or not (suffix is None or isinstance(suffix, str)):
        raise InvalidParameterError("prompt and suffix must be strings.")
    extra = dict(context or {})
    if not isinstance(extra.get("context", []), list):
        raise InvalidParameterError('context must be a list of {"filename": ..., "text": ...} files.')
    if suffix is not None:
        return "fill", {"prefix": prompt, "suffix": suffix, **extra}
    templated = read_templated(prompt)
    if templated is None:
        if extra.get("context"):
            raise InvalidParameterError("Repository context is for fills: send a suffix (or a prompt with FIM "
                                        "sentinels) with it.")
        return "complete", {"prompt": prompt}
    inputs: dict[str, Any] = {"prefix": templated.prefix, "suffix": templated.suffix,
                              "filename": templated.filename or extra.get("filename", "")}
    files = [{"filename": f.filename, "text": f.text} for f in templated.context.files] + extra.get("context", [])
    if files:
        inputs["context"] = files
    if templated.context.repo_name or extra.get("repo_name"):
        inputs["repo_name"] = templated.context.repo_name or extra["repo_name"]
    return "fill", inputs


def first_prompt(value: Any) -> str:
    """OpenAI's ``prompt`` may be a list; editors send one string (or a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise InvalidParameterError("prompt must be one string (a list of several prompts is not served here).")
    return value


def given(body: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The body's fields by their dialect names, renamed to the service's; absent and null ones left out."""
    return {ours: body[theirs] for theirs, ours in names.items() if body.get(theirs) is not None}


@dataclass(frozen=True)
class EditorAccess:
    """Who may call the editor routes: anyone when no key is configured; else a key, each with its own limit.
    Keys are held and compared as digests, so neither a log line nor a record can carry one."""

    digests: frozenset[bytes] = frozenset()
    per_key: RateLimiter = field(default_factory=lambda: RateLimiter(0, "completions with this API key"))

    @classmethod
    def of(cls, keys: tuple[str, ...], per_minute: int, shared: SharedCounts | None = None) -> EditorAccess:
        return cls(frozenset(_digest(key) for key in keys),
                   RateLimiter(per_minute, "completions with this API key", shared=shared))

    def check(self, request: Request, open_limit: RateLimiter) -> None:
        if not self.digests:
            open_limit.check(request)  # open routes count per address, as the REST API does
            return
        offered = _key_of(request)
        digest = _digest(offered) if offered else b""
        if not any(hmac.compare_digest(digest, known) for known in self.digests):
            raise KeyRequiredError("This route needs an API key: send it as 'Authorization: Bearer KEY'. "
                                   "Ask the server's operator for one." if not offered else
                                   "This API key is not known here. Check it, or ask the server's operator.")
        self.per_key.hit(digest.hex())


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _key_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key", "") or request.headers.get("api-key", "")


async def read_call(request: Request, playground: Playground, access: EditorAccess, open_limit: RateLimiter,
                    parse: Any) -> tuple[EditorCall, Run | None]:
    """Check access, read and parse the body, and start its run (None for a cache-warming call)."""
    if open_limit.shared is None:  # counted in memory: no need to leave the event loop
        access.check(request, open_limit)
    else:  # the limits ask the database: never on the event loop
        await run_in_threadpool(access.check, request, open_limit)
    body = await read_json_object(request)
    call: EditorCall = parse(body)
    if call.model not in playground.slots and len(playground.slots) == 1:
        # Editors send whatever model name their settings hold; with one model served, that is the one meant.
        call = replace(call, model=None)
    if call.warm_only:
        await run_in_threadpool(playground.plan, call.mode, call.model, call.inputs, call.params)
        return call, None
    run = await run_in_threadpool(playground.start, call.mode, call.model, call.inputs, call.params)
    return call, run


async def deltas(run: Run) -> AsyncIterator[tuple[str, Any]]:
    """("delta", text) as the middle or continuation settles, then ("done", record) or ("error", exc)."""
    async for kind, payload in events(run):
        if kind == "delta":
            run.mark_sent(payload[0])
            yield kind, payload[0]
        else:
            yield kind, payload


def playground_field(record: Generation) -> dict[str, Any]:
    """What every editor answer carries beside the dialect's own fields (clients ignore it): the generation,
    where to read and share it, and what its attribution check found."""
    report = record.attribution
    attribution: dict[str, Any] | None = None
    if report is not None:
        attribution = {"checked": report.unavailable is None, "matches": len(report.matches),
                       "licenses": sorted({m.source.license for m in report.matches})}
        if report.unavailable:
            attribution["unavailable"] = report.unavailable
    return {"generation_id": record.id, "record": f"/api/generations/{record.id}",
            "share": {"method": "POST", "url": "/api/shares", "body": {"generation_id": record.id}},
            "mode": record.mode, "finish_reason": record.finish_reason, "notices": record.notices,
            "budget": None if record.budget is None else [part.to_dict() for part in record.budget],
            "attribution": attribution}
