"""The OpenAPI 3.1 document, generated: from the route table (routes.ROUTES, a tuple of
`Operation`s) and the typed models of models.py, once, at import. Nothing here repeats a
JSON shape or a parameter's bounds: schemas come from the models through pydantic, query
parameters describe themselves (query.py), and a route's errors and security are fields
of its table entry. `/docs` is this document rendered as one self-contained HTML page.

OpenAPI 3.1 rather than 3.0: its schemas are JSON Schema 2020-12, which is what pydantic
writes (`anyOf` with `{"type": "null"}`, `const`), so the models' schemas go in as they
are, without a lossy translation to 3.0's `nullable`."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import CoreSchema

from ... import limits
from .models import Error
from .query import QueryParam, Schema

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(Enum):
    """Who may call a route (auth.py enforces it; this says it in the document)."""

    OPEN = "open"  # no token, no allowlist
    TOKEN = "token"  # API_TOKENS and ALLOWED_IPS, when set: /api/*
    WEBSOCKET = "websocket"  # as TOKEN, and the token may come as ?token= or ?api_key=
    METRICS = "metrics"  # open unless PROTECT_METRICS=true, then as TOKEN
    STATUS = "status"  # the status page and badges: open with PUBLIC_STATUS=true, else as TOKEN


Tag = Literal["status", "config", "schedule", "charts", "websocket", "exporter", "docs", "incidents"]
TAGS: tuple[Tag, ...] = ("status", "config", "schedule", "charts", "websocket", "exporter", "docs", "incidents")


@dataclass(frozen=True)
class Answer:
    """One documented response: a model (a TypedDict, `list[...]` of one, a union, or
    `str` for text) in a media type."""

    description: str
    model: Any  # a type form (a TypedDict, list[...], a union): no narrower annotation says that before 3.14
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """One row of the route table. `handler` is None for the routes web/server.py
    registers itself (`/metrics`, `/healthz`, `/-/reload`, `/`); the table documents them."""

    method: str
    path: str
    summary: str
    tag: Tag
    handler: Handler | None
    ok: Answer
    status: int = 200
    params: tuple[QueryParam, ...] = ()
    body: Any = None  # the request body's model, if it takes one
    body_required: bool = False
    errors: tuple[int, ...] = ()  # codes answered with the shared Error responses below
    answers: Mapping[int, Answer] = field(default_factory=dict)  # other answers, or a code's own wording
    access: Access = Access.TOKEN
    description: str = ""
    head: bool = False  # also answer HEAD (undocumented, as aiohttp's add_get does)
    path_params: tuple[QueryParam, ...] = ()  # the `{name}`s of `path`, required, parsed from match_info


def json_route(
    method: str,
    path: str,
    handler: Callable[[web.Request], Awaitable[T]],
    response: type[T],
    *,
    summary: str,
    tag: Tag,
    params: tuple[QueryParam, ...] = (),
    body: Any = None,
    body_required: bool = False,
    errors: tuple[int, ...] = (),
    answers: Mapping[int, Answer] | None = None,
    description: str = "",
    path_params: tuple[QueryParam, ...] = (),
) -> Operation:
    """A JSON route: `handler` returns the model the route declares, and mypy checks
    that it is the one (`T` binds them); the wrapper answers it as JSON with 200."""

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.json_response(await handler(request))

    serve.__name__ = serve.__qualname__ = getattr(handler, "__name__", "serve")  # for tracebacks and logs
    return Operation(
        method,
        path,
        summary,
        tag,
        serve,
        Answer("OK", response),
        params=params,
        body=body,
        body_required=body_required,
        errors=errors,
        answers=answers or {},
        description=description,
        path_params=path_params,
    )


# ---------------------------------------------------------------- the document

SHARED_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "bad parameter or body"),
    404: ("NotFound", "unknown provider or endpoint"),
    408: ("RequestTimeout", f"the body did not arrive within {limits.API_BODY_SECONDS:g} s"),
    409: ("Conflict", "not possible in the exporter's current state"),
    413: ("PayloadTooLarge", "body too large (over 16 KiB)"),
    415: ("UnsupportedMediaType", "a compressed body (Content-Encoding): send it uncompressed"),
    422: ("Unprocessable", "the provider cannot be tested"),
}
UNAUTHORIZED = ("Unauthorized", "API_TOKENS is set and the request carries no valid token")
FORBIDDEN = ("Forbidden", "ALLOWED_IPS is set and the client address is not in it")
SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.TOKEN: [{"bearer": []}, {"apiKey": []}],
    Access.WEBSOCKET: [{"bearer": []}, {"apiKey": []}, {"queryToken": []}],
    # `{}`: no credentials is also accepted (unless PROTECT_METRICS=true).
    Access.METRICS: [{}, {"bearer": []}, {"apiKey": []}],
    Access.STATUS: [{}, {"bearer": []}, {"apiKey": []}],  # `{}` with PUBLIC_STATUS=true
}


class _Schemas(GenerateJsonSchema):
    """pydantic's generator, minus a title on every field (`"Total Apis"`): noise for
    readers of the document; the models keep their titles."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def model_schemas(models: Iterable[tuple[Any, JsonSchemaMode]]) -> tuple[list[Schema], dict[str, Schema]]:
    """JSON Schemas of `models` (in order) and the named ones they refer to, keyed for
    components/schemas. Request bodies go in "validation" mode, answers "serialization"."""
    inputs: list[tuple[int, JsonSchemaMode, TypeAdapter[Any]]] = [(i, mode, TypeAdapter(model)) for i, (model, mode) in enumerate(models)]
    by_key, defs = TypeAdapter.json_schemas(inputs, ref_template=REF, schema_generator=_Schemas)
    return [by_key[(i, mode)] for i, mode, _ in inputs], dict(defs.get("$defs", {}))


def _ref_response(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _content(media_type: str, schema: Schema) -> Schema:
    return {media_type: {"schema": schema}}


def document_path(path: str) -> str:
    """The path as OpenAPI writes it: aiohttp's `{id:[0-9]+}` (a variable that only
    matches digits, so that a static sibling such as `/api/incidents/webhook` is not
    also answered by it) is `{id}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def build_document(operations: Sequence[Operation], named: Mapping[str, Any] | None = None) -> Schema:
    """The whole document. `named` models that are not classes (unions) become components
    under these names, referred to wherever an operation uses them; the other named models
    are components no operation refers to (the messages a WebSocket client may send)."""
    extra = dict(named or {})
    names = {id(model): name for name, model in extra.items()}

    def schema_of(model: Any, schema: Schema) -> Schema:
        return {"$ref": REF.format(model=names[id(model)])} if id(model) in names else schema

    wanted: list[tuple[Any, JsonSchemaMode]] = [(Error, "serialization")]
    for op in operations:
        wanted.append((op.ok.model, "serialization"))
        wanted.extend((a.model, "serialization") for a in op.answers.values())
        if op.body is not None:
            wanted.append((op.body, "validation"))
    wanted.extend((m, "serialization") for m in extra.values())
    schemas, components = model_schemas(wanted)
    of = iter(schemas)
    error = next(of)

    paths: dict[str, Schema] = {}
    for op in operations:
        out: Schema = {"summary": op.summary, "tags": [op.tag]}
        if op.description:
            out["description"] = op.description
        if op.access in SECURITY:
            out["security"] = SECURITY[op.access]
        if op.params or op.path_params:
            out["parameters"] = [
                *({"name": p.name, "in": "path", "required": True, "description": p.description, "schema": p.schema()} for p in op.path_params),
                *({"name": p.name, "in": "query", "required": False, "description": p.description, "schema": p.schema()} for p in op.params),
            ]
        responses: Schema = {str(op.status): {"description": op.ok.description, "content": _content(op.ok.media_type, schema_of(op.ok.model, next(of)))}}
        if op.access is not Access.OPEN:
            responses["401"] = _ref_response(UNAUTHORIZED[0])
            responses["403"] = _ref_response(FORBIDDEN[0])
        for code in op.errors:
            responses[str(code)] = _ref_response(SHARED_ERRORS[code][0])
        for code, answer in op.answers.items():
            responses[str(code)] = {"description": answer.description, "content": _content(answer.media_type, schema_of(answer.model, next(of)))}
        out["responses"] = dict(sorted(responses.items()))
        if op.body is not None:
            out["requestBody"] = {"required": op.body_required, "content": _content("application/json", next(of))}
        paths.setdefault(document_path(op.path), {})[op.method.lower()] = out
    for name in extra:
        components[name] = next(of)

    shared = {name: {"description": text, "content": _content("application/json", error)} for name, text in (*SHARED_ERRORS.values(), UNAUTHORIZED, FORBIDDEN)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Crypto API Exporter JSON API",
            "version": VERSION,
            "description": "The old Crypto API Monitor backends' JSON API, served from the exporter's own probe results. "
            "Times are ISO 8601 UTC, latencies milliseconds. See docs/api.md.",
        },
        "tags": [{"name": t} for t in TAGS],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": shared,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "one of API_TOKENS"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "one of API_TOKENS"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token", "description": "WebSocket routes only"},
            },
        },
    }


# ---------------------------------------------------------------- /docs


def _type_of(schema: Any) -> str:
    """A short human form of a property's schema: `string | null`, `array of LogEntry`."""
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_of(s) for s in schema[key])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return f"object of {_type_of(schema['additionalProperties'])}"
    return str(schema.get("format") or schema.get("type", "any"))


def render_docs(doc: Schema) -> str:
    esc = html.escape
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = ", ".join(esc(p["name"]) for p in op.get("parameters", []))
            codes = ", ".join(op.get("responses", {}))
            rows.append(
                f"<tr><td><code>{esc(method.upper())}</code></td><td><code>{esc(path)}</code></td><td>{esc(op.get('summary', ''))}"
                f"{'<br><small>' + esc(op['description']) + '</small>' if op.get('description') else ''}</td><td>{params}</td><td>{esc(codes)}</td></tr>"
            )
    schemas = []
    for name, s in doc["components"]["schemas"].items():
        props = s.get("properties", {})
        required = set(s.get("required", []))
        fields = "".join(
            f"<li><code>{esc(k)}</code>{'' if k in required else ' (optional)'}: {esc(_type_of(v))}"
            f"{' &mdash; ' + esc(v['description']) if isinstance(v, dict) and v.get('description') else ''}</li>"
            for k, v in props.items()
        )
        body = f"<ul>{fields}</ul>" if fields else f"<p><code>{esc(_type_of(s))}</code></p>"
        schemas.append(f"<h3 id='{esc(name)}'>{esc(name)}</h3><p>{esc(s.get('description', ''))}</p>{body}")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Crypto API Exporter API</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}td{border-top:1px solid #ccc;padding:4px;vertical-align:top}</style></head><body>"
        f"<h1>{esc(doc['info']['title'])} {esc(doc['info']['version'])}</h1><p>{esc(doc['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Auth: <code>Authorization: Bearer &lt;token&gt;</code> or <code>X-API-Key</code> when API_TOKENS is set.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>responses</th></tr>" + "".join(rows) + "</table>"
        "<h2>Schemas</h2>" + "".join(schemas) + "</body></html>"
    )
