"""The REST request bodies as pydantic models: validated once at the edge and shown in ``/api/docs``.

Each mode's body is built from what the mode declares (its ``inputs`` model)
plus the fields every generation takes; the parameters' schema is built from
their declarations in ``params.py``, so the docs give each one's type, bounds
and help. Bodies are read with ``bodies.read_json_object`` (bounded size and
depth) and validated here; the parameters themselves are validated by
``GenerationParams.parse``, whose messages name the allowed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_type_hints

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema, create_model

from playground.modes import Mode
from playground.params import PARAMS, GenerationParams


def _params_model() -> type[BaseModel]:
    """The generation parameters as the docs show them, from their declarations."""
    hints = get_type_hints(GenerationParams)
    fields: dict[str, Any] = {}
    for name, param in PARAMS.items():
        low, high = (param.bound.minimum, param.bound.maximum) if param.bound else (None, None)
        fields[name] = (hints[name] | None, Field(None, description=param.help, ge=low, le=high))
    return create_model("Params", __config__=ConfigDict(extra="forbid"), **fields)


class Options(BaseModel):
    """What every generation request takes beside its mode's inputs."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, description="A model id from GET /api/models; the first one by default.")
    # Documented from the declarations; validated by GenerationParams.parse for its range messages.
    params: Annotated[dict[str, Any] | None, WithJsonSchema(_params_model().model_json_schema())] = None
    stream: bool | None = Field(False, description="Answer as server-sent events: deltas, then the record.")


def generate_body(modes: Mapping[str, Mode]) -> Any:
    """The body of POST /api/generate: one shape per mode, told apart by ``mode``."""
    shapes = tuple(create_model(f"{name.title()}Request", __base__=(mode.inputs, Options),
                                mode=(Literal[name], Field(description="Which mode generates.")))  # type: ignore[arg-type]
                   for name, mode in modes.items())
    return Annotated[Union[shapes], Field(discriminator="mode")]  # noqa: UP007 - a runtime tuple of types


class ErrorDetail(BaseModel):
    type: str = Field(description="What went wrong, for programs: invalid_input, prompt_too_long, rate_limited, ...")
    message: str = Field(description="What went wrong and what to do next, for people.")


class ErrorBody(BaseModel):
    """Every error answer: 400, 404, 413 and 422 for bad input, 429 when rate-limited, 503 when busy or
    the model is unavailable."""

    error: ErrorDetail


class ShareBody(BaseModel):
    generation_id: str = Field(description="The id of a generation, from /api/generate or the UI.")


class AttributionBody(BaseModel):
    text: str = Field(description="The code to check, up to 100,000 characters.")


def _schema(body: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """``body``'s JSON schema, its models added to ``schemas`` (the document's components)."""
    schema = TypeAdapter(body).json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    return schema


def document(app: FastAPI, bodies: Mapping[str, Any]) -> None:
    """Show ``bodies`` (route path → body type) and the error shape in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for path, body in bodies.items():
            operation = spec["paths"].get(path, {}).get("post")
            if operation is not None:
                content = {"application/json": {"schema": _schema(body, schemas)}}
                operation["requestBody"] = {"required": True, "content": content}
        schemas["ErrorBody"] = _schema(ErrorBody, schemas)
        error = {"description": ErrorBody.__doc__, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for operations in spec["paths"].values():
            for operation in operations.values():
                operation.setdefault("responses", {}).update({"4XX": error, "5XX": error})
                operation["responses"].pop("422", None)  # FastAPI's own validation shape is never sent
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
