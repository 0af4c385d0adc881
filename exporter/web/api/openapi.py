"""The OpenAPI 3 document of every route, served at `/openapi.json`, and a browsable
`/docs` page rendered from it (self-contained: no CDN, works offline)."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from ...model import Category, Outcome, ProviderStatus
from .events import CONTROL_TYPES, EVENT_TYPES
from .query import MAX_PAGE, MAX_PER_PAGE

Schema = dict[str, Any]
VERSION = "1.0.0"

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
NAME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 100, "description": "a configured provider or endpoint name"}


def nullable(s: Schema) -> Schema:
    return {**s, "nullable": True}


def obj(props: dict[str, Schema], optional: dict[str, Schema] | None = None, description: str = "", closed: bool = False) -> Schema:
    out: Schema = {"type": "object", "required": list(props), "properties": {**props, **(optional or {})}}
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


OUTCOME: Schema = {"type": "string", "enum": [o.value for o in Outcome]}
STATUS: Schema = {"type": "string", "enum": [s.value for s in ProviderStatus]}
CATEGORY: Schema = {"type": "string", "enum": [c.value for c in Category]}


def filter_of(s: Schema) -> Schema:
    """A query filter: an empty value means no filter, as the old backends took it."""
    if "enum" in s:
        return {**s, "enum": [*s["enum"], ""]}
    return {**s, "pattern": f"^({s['pattern'][1:-1]})?$"}


SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STR, "detail": STR, "field": nullable(STR)}, description="Every 4xx answer: a code, what is wrong, and the parameter or body field at fault."),
    "Status": obj(
        {
            "total_apis": INT,
            "online": INT,
            "degraded": INT,
            "offline": INT,
            "unknown": INT,
            "avg_response_time_ms": NUM,
            "last_update": TIME,
            "system_health": {"type": "string", "enum": ["healthy", "degraded", "unknown"]},
        }
    ),
    "Category": obj(
        {
            "name": STR,
            "category": CATEGORY,
            "total_sources": INT,
            "online_sources": INT,
            "online_ratio": NUM,
            "avg_response_time_ms": NUM,
            "rate_limited_count": INT,
            "last_updated": TIME,
            "status": {"type": "string", "enum": ["online", "degraded", "unknown"]},
        }
    ),
    "EndpointStatus": obj(
        {
            "name": STR,
            "status": nullable(OUTCOME),
            "healthy": BOOL,
            "response_time_ms": nullable(NUM),
            "http_code": nullable(INT),
            "last_probe": nullable(TIME),
            "last_success": nullable(TIME),
            "data_age_seconds": nullable(NUM),
            "health_score": nullable(INT),
        }
    ),
    "Provider": obj(
        {
            "id": STR,
            "name": STR,
            "category": CATEGORY,
            "status": STATUS,
            "health_score": nullable({"type": "integer", "minimum": 0, "maximum": 100}),
            "response_time_ms": nullable(NUM),
            "rate_limit": obj({"used": nullable(NUM), "total": nullable(NUM), "period": nullable(STR), "percentage": nullable(NUM)}),
            "last_fetch": nullable(TIME),
            "has_key": BOOL,
            "circuit_state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "description": STR,
            "docs_url": STR,
            "endpoints": arr(ref("EndpointStatus")),
        }
    ),
    "LogEntry": obj(
        {
            "timestamp": TIME,
            "provider": STR,
            "category": STR,
            "endpoint": STR,
            "status": OUTCOME,
            "response_time_ms": nullable(NUM),
            "http_code": nullable(INT),
            "attempts": INT,
            "retries": arr(STR),
            "error_message": nullable(STR),
            "key": nullable(STR),
            "slow": BOOL,
        },
        description="One probe. `key` is the env var name of the API key used, never its value.",
    ),
    "LogPage": obj({"total": INT, "page": INT, "per_page": INT, "pages": INT, "logs": arr(ref("LogEntry"))}),
    "Failures": obj(
        {
            "total": INT,
            "error_type_distribution": {"type": "object", "additionalProperties": INT},
            "top_failing_providers": arr(obj({"provider": STR, "failure_count": INT})),
            "recent_failures": arr(
                obj(
                    {
                        "timestamp": TIME,
                        "provider": STR,
                        "endpoint": STR,
                        "error_type": OUTCOME,
                        "error_message": nullable(STR),
                        "http_code": nullable(INT),
                        "retry_attempted": BOOL,
                        "retries": arr(STR),
                    }
                )
            ),
            "remediation_suggestions": arr(obj({"error_type": OUTCOME, "count": INT, "suggestion": STR})),
        }
    ),
    "RateLimit": obj(
        {
            "provider": STR,
            "category": STR,
            "scope": STR,
            "limit_type": STR,
            "limit_value": nullable(NUM),
            "remaining": nullable(NUM),
            "current_usage": nullable(NUM),
            "percentage": nullable(NUM),
            "reset_at": nullable(TIME),
            "status": {"type": "string", "enum": ["normal", "warning", "critical", "exhausted", "unknown"]},
        }
    ),
    "KeyConfig": obj(
        {
            "provider": STR,
            "category": STR,
            "auth_type": STR,
            "optional": BOOL,
            "key_masked": nullable(STR),
            "status": {"type": "string", "enum": ["active", "invalid", "missing"]},
            "keys": arr(obj({"env": STR, "set": BOOL, "valid": BOOL, "masked": nullable(STR)})),
        },
        description="Keys by env var name; `masked` shows at most the last 4 characters.",
    ),
    "KeyTestRequest": obj({"provider": NAME}, {"endpoint": NAME}, closed=True, description="endpoint defaults to the provider's first endpoint"),
    "KeyTestResult": obj(
        {
            "provider": STR,
            "endpoint": STR,
            "tested_at": TIME,
            "results": arr(
                obj(
                    {
                        "env": STR,
                        "set": BOOL,
                        "masked": nullable(STR),
                        "valid": nullable(BOOL),
                        "outcome": nullable(OUTCOME),
                        "http_code": nullable(INT),
                        "response_time_ms": nullable(NUM),
                        "detail": nullable(STR),
                    }
                )
            ),
        },
        description="`valid` is null when the probe could not tell (timeout, 5xx, budget exhausted).",
    ),
    "Schedule": obj(
        {
            "provider": STR,
            "category": STR,
            "schedule": STR,
            "last_run": nullable(TIME),
            "next_run": nullable(TIME),
            "on_time_percentage": NUM,
            "runs": obj({"on_time": INT, "late": INT, "missed": INT}),
            "status": {"type": "string", "enum": ["active", "paused", "unscheduled"]},
            "endpoints": arr(
                obj({"endpoint": STR, "interval_seconds": NUM, "jitter_seconds": NUM, "last_run": nullable(TIME), "next_run": nullable(TIME), "scheduled": BOOL})
            ),
        }
    ),
    "TriggerRequest": obj({}, {"provider": NAME, "endpoint": NAME}, closed=True, description="no provider: every job; endpoint alone: that endpoint of every provider"),
    "TriggerResult": obj({"status": {"type": "string", "enum": ["triggered"]}, "provider": nullable(STR), "endpoint": nullable(STR), "jobs": arr(STR)}),
    "HealthHistory": obj(
        {
            "source": {"type": "string", "enum": ["memory", "prometheus"]},
            "hours": INT,
            "provider": nullable(STR),
            "warning": nullable(STR),
            "timestamps": arr(TIME),
            "success_rate": arr(nullable(NUM)),
            "online": arr(nullable(INT)),
            "degraded": arr(nullable(INT)),
            "offline": arr(nullable(INT)),
            "unknown": arr(nullable(INT)),
        },
        description="Parallel arrays, one entry per sample. success_rate: percent of probes since the previous sample that succeeded.",
    ),
    "Compliance": obj(
        {
            "source": {"type": "string", "enum": ["memory", "prometheus"]},
            "hours": INT,
            "provider": nullable(STR),
            "warning": nullable(STR),
            "timestamps": arr(TIME),
            "compliance_percentage": arr(nullable(NUM)),
            "on_time": arr(nullable(INT)),
            "late": arr(nullable(INT)),
            "missed": arr(nullable(INT)),
        }
    ),
    "Freshness": obj(
        {
            "provider": STR,
            "category": STR,
            "endpoint": STR,
            "fetch_time": nullable(TIME),
            "data_timestamp": nullable(TIME),
            "age_seconds": nullable(NUM),
            "staleness_minutes": nullable(NUM),
            "max_age_seconds": NUM,
            "ttl_minutes": NUM,
            "freshness_rule": BOOL,
            "status": {"type": "string", "enum": ["fresh", "aging", "stale", "unknown"]},
        }
    ),
    "WsMessage": obj(
        {"type": {"type": "string", "enum": [*EVENT_TYPES, *CONTROL_TYPES]}, "data": {"type": "object"}, "timestamp": TIME},
        description="Every WebSocket message. status_update.data = {total_apis, online, degraded, offline, unknown, avg_response_time_ms, system_health, websocket_clients}; "
        "new_log_entry.data = a LogEntry; rate_limit_alert.data = {provider, scope, percentage, limit, remaining, reset_at, severity}; "
        "provider_status_change.data = {provider, category, old_status, new_status, health_score, details}; ping.data = {}.",
    ),
}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: Schema, *codes: int) -> Schema:
    out: Schema = {"200": ok, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}
    for code in codes:
        out[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return out


def _q(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PROVIDER_Q = _q("provider", filter_of(NAME), "only this provider (a configured name; 404 otherwise)")
HOURS_Q = _q("hours", {"type": "integer", "minimum": 1, "maximum": 168, "default": 24}, "how far back")
SECURED = [{"bearer": []}, {"apiKey": []}]


def _op(summary: str, ok: Schema, *codes: int, params: list[Schema] | None = None, tag: str = "status", body: Schema | None = None, description: str = "") -> Schema:
    op: Schema = {"summary": summary, "tags": [tag], "responses": _responses(ok, *codes), "security": SECURED}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    return op


def _ws(summary: str) -> Schema:
    return {
        "get": {
            "summary": summary,
            "tags": ["websocket"],
            "description": "WebSocket (Upgrade: websocket). Messages are WsMessage objects. Send "
            '{"type": "subscribe", "types": ["status_update", "provider_status_change"]} to filter, '
            '{"type": "unsubscribe", "types": [...]}, or {"type": "ping"}. The token may be given as ?token= (or ?api_key=). '
            "A plain HTTP GET gets 400.",
            "security": [*SECURED, {"queryToken": []}],
            "parameters": [_q("types", STR, "comma-separated message types to receive (default: all)")],
            "responses": {
                "101": {"description": "Switching protocols; then WsMessage frames", "content": {"application/json": {"schema": ref("WsMessage")}}},
                "400": {"$ref": "#/components/responses/E400"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
            },
        }
    }


def build_document() -> Schema:
    page = _q("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "page number, from 1")
    per_page = _q("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 50}, "entries per page")
    trigger_body = {"required": False, "content": {"application/json": {"schema": ref("TriggerRequest")}}}
    keys_body = {"required": True, "content": {"application/json": {"schema": ref("KeyTestRequest")}}}
    paths: dict[str, Schema] = {
        "/api/status": {"get": _op("Counts of providers by status", _json(ref("Status")))},
        "/api/categories": {"get": _op("Per category: sources, online ratio, latency", _json(arr(ref("Category"))))},
        "/api/providers": {
            "get": _op(
                "Providers with their endpoints' last results",
                _json(arr(ref("Provider"))),
                400,
                params=[_q("category", filter_of(CATEGORY), "only this category"), _q("status", filter_of(STATUS), "only this status"), _q("search", {"type": "string", "maxLength": 200}, "substring of name or description")],
            )
        },
        "/api/logs": {
            "get": _op(
                "Recent probes, newest first (the last 1000)",
                _json(ref("LogPage")),
                400,
                404,
                params=[page, per_page, PROVIDER_Q, _q("endpoint", {"type": "string", "maxLength": 200}, "only this endpoint"), _q("outcome", filter_of(OUTCOME), "only this outcome"), _q("status", filter_of(OUTCOME), "alias of outcome (old clients)")],
            )
        },
        "/api/failures": {
            "get": _op(
                "Failure analysis of the last 200 failed probes",
                _json(ref("Failures")),
                400,
                404,
                params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}, "recent failures to list"), PROVIDER_Q],
            )
        },
        "/api/rate-limits": {"get": _op("Quotas seen in headers, and client-side budgets", _json(arr(ref("RateLimit"))), 400, 404, params=[PROVIDER_Q])},
        "/api/config/keys": {"get": _op("API keys by env var name, masked", _json(arr(ref("KeyConfig"))), tag="config")},
        "/api/config/keys/test": {
            "post": _op(
                "Probe a provider's endpoint once per configured key, now",
                _json(ref("KeyTestResult")),
                400,
                404,
                409,
                413,
                422,
                tag="config",
                body=keys_body,
                description="One attempt per key, no retry; spends the client-side budget; what it learns about each key updates crypto_api_key_valid. "
                "403 unless API_TOKENS is set or the exporter runs with --web.enable-actions.",
            )
        },
        "/api/schedule": {"get": _op("Probe schedule and compliance per provider", _json(arr(ref("Schedule"))), tag="schedule")},
        "/api/schedule/trigger": {
            "post": _op(
                "Run one provider's (or endpoint's, or every) probes now",
                _json(ref("TriggerResult")),
                400,
                404,
                409,
                413,
                tag="schedule",
                params=[_q("provider", filter_of(NAME), "the provider (old clients); the body's wins"), _q("endpoint", filter_of(NAME), "one endpoint of that provider")],
                body=trigger_body,
                description="409 when the exporter runs without its scheduler. 403 unless API_TOKENS is set or the exporter runs with --web.enable-actions.",
            )
        },
        "/api/charts/health-history": {"get": _op("Success rate and status counts over time", _json(ref("HealthHistory")), 400, 404, params=[HOURS_Q, PROVIDER_Q], tag="charts")},
        "/api/charts/compliance": {"get": _op("Schedule compliance over time", _json(ref("Compliance")), 400, 404, params=[HOURS_Q, PROVIDER_Q], tag="charts")},
        "/api/freshness": {"get": _op("Data age per endpoint against its bound", _json(arr(ref("Freshness"))), 400, 404, params=[PROVIDER_Q])},
        "/ws/live": _ws("Live events: status_update, new_log_entry, rate_limit_alert, provider_status_change, ping"),
        "/ws": _ws("All live events; accepts subscription messages"),
        "/ws/master": _ws("Alias of /ws"),
        "/metrics": {
            "get": {
                "summary": "Prometheus exposition",
                "tags": ["exporter"],
                "description": "Open unless PROTECT_METRICS=true, then it takes the same tokens and allowlist as /api.",
                "responses": {
                    "200": {"description": "text exposition format", "content": {"text/plain": {"schema": STR}}},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": {"$ref": "#/components/responses/Forbidden"},
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness (always open)", "tags": ["exporter"], "responses": {"200": _json(obj({"status": STR}))}}},
        "/-/reload": {
            "post": {
                "summary": "Reload providers.yaml (as SIGHUP does)",
                "tags": ["exporter"],
                "responses": {
                    "200": _json(obj({"status": STR})),
                    "403": _json(ref("Error"), "the lifecycle API is off (start with --web.enable-lifecycle; SIGHUP always reloads)"),
                    "422": _json(obj({"status": STR, "errors": arr(STR)}), "the file has errors; the last good config keeps running"),
                },
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "tags": ["docs"], "responses": {"200": _json({"type": "object"})}}},
        "/docs": {"get": {"summary": "This document as a browsable page", "tags": ["docs"], "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": STR}}}}}},
        "/": {"get": {"summary": "Landing page", "tags": ["docs"], "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": STR}}}}}},
    }
    responses = {f"E{code}": _error(text) for code, text in ((400, "bad parameter or body"), (404, "unknown provider or endpoint"), (409, "not possible in the exporter's current state"), (413, "body too large"), (422, "the provider cannot be tested"))}
    responses["Unauthorized"] = _error("API_TOKENS is set and the request carries no valid token")
    responses["Forbidden"] = _error("ALLOWED_IPS is set and the client address is not in it")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Crypto API Exporter JSON API",
            "version": VERSION,
            "description": "The old Crypto API Monitor backends' JSON API, served from the exporter's own probe results. See docs/api.md.",
        },
        "tags": [{"name": t} for t in ("status", "config", "schedule", "charts", "websocket", "exporter", "docs")],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": responses,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "one of API_TOKENS"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "one of API_TOKENS"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token", "description": "WebSocket routes only"},
            },
        },
    }


DOCUMENT = build_document()


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


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
    schemas = "".join(
        f"<h3 id='{esc(name)}'>{esc(name)}</h3><p>{esc(s.get('description', ''))}</p><p><code>{esc(', '.join(s.get('properties', {})))}</code></p>" for name, s in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Crypto API Exporter API</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}td{border-top:1px solid #ccc;padding:4px;vertical-align:top}</style></head><body>"
        f"<h1>{esc(doc['info']['title'])} {esc(doc['info']['version'])}</h1><p>{esc(doc['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Auth: <code>Authorization: Bearer &lt;token&gt;</code> or <code>X-API-Key</code> when API_TOKENS is set.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>responses</th></tr>" + "".join(rows) + "</table>"
        "<h2>Schemas</h2>" + schemas + "</body></html>"
    )


_DOCS_HTML = render_docs(DOCUMENT)


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")
