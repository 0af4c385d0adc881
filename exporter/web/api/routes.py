"""The route table and the JSON handlers of the old backends' contract.

Handlers are thin: parse the declared parameters, read state through `views`, return the
route's typed model (json_route answers it as JSON). The only actions are the two
documented POSTs. `ROUTES` is the one table of every route the server answers: it is
what setup_api registers and what `/openapi.json` is generated from (the routes of
web/server.py are in it too, without a handler, so they are documented)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from ...config import Provider as ProviderSpec
from ...feeds.state import FeedStore
from ...model import Category, Outcome, ProviderStatus
from ...selection import why
from ...state import State
from ..control import ExporterControl, NotRunning
from . import views
from .badges import PROVIDER as BADGE_PROVIDER
from .badges import SVG, WINDOW, health_badge, latency_badge, uptime_badge
from .body import read_json_body
from .chains import chain_rows
from .errors import ApiError
from .events import TYPES, Hub
from .feeds import MARKET_TYPES, feeds_view
from .history import (
    HistoryRecorder,
    PrometheusError,
    PrometheusHistory,
    compliance_series,
    health_series,
)
from .incidents import INCIDENT_ROUTES
from .models import (
    CategorySummary,
    Chain,
    Compliance,
    Error,
    Failures,
    Feed,
    Freshness,
    HealthHistory,
    JsonObject,
    KeyConfig,
    KeyTestRequest,
    KeyTestResult,
    LogPage,
    Ok,
    Provider,
    RateLimit,
    ReloadFailed,
    Schedule,
    ShardView,
    Status,
    TriggerRequest,
    TriggerResult,
    WsClientMessage,
    WsMessage,
)
from .openapi import Access, Answer, Handler, Operation, build_document, json_route, render_docs
from .query import (
    MAX_PAGE,
    MAX_PER_PAGE,
    EnumParam,
    IntParam,
    NameParam,
    QueryParam,
    StrParam,
    paginate,
)
from .settings import ApiSettings
from .status_page import status_page

log = structlog.get_logger()
MAX_HOURS = 168


@dataclass
class Api:
    control: ExporterControl
    store: State
    settings: ApiSettings
    hub: Hub
    history: HistoryRecorder
    prometheus: PrometheusHistory | None = None
    actions_allowed: bool = False
    clock: Callable[[], float] = field(default=time.time)
    feeds: FeedStore = field(default_factory=FeedStore)  # the WebSocket feeds (web/api/feeds.py)

    def provider_names(self) -> list[str]:
        """Every configured provider: a disabled one is known (its filters answer empty)."""
        config = self.control.config
        return [p.name for p in config.providers] + [d.name for d in config.disabled]

    def require_actions(self, route: str) -> None:
        """Routes that make requests to providers spend their quota: not for anyone who
        can reach the port."""
        if not self.actions_allowed:
            raise ApiError(
                403,
                f"{route} sends requests to providers and spends their quota: set API_TOKENS (callers then "
                "authenticate) or start the exporter with --web.enable-actions",
                None,
            )


API_KEY = web.AppKey("api", Api)


def _api(request: web.Request) -> Api:
    return request.app[API_KEY]


def body_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name}: must be a non-empty string", name)
    return value.strip()


def fields_of(model: Any) -> frozenset[str]:
    """The keys a request body model (a TypedDict) declares."""
    return frozenset(model.__required_keys__ | model.__optional_keys__)


def reject_unknown(body: dict[str, Any], known: frozenset[str]) -> None:
    for key in body:
        if key not in known:
            name = str(key)[:60]
            raise ApiError(400, f"{name}: unknown field (known: {', '.join(sorted(known))})", name)


def _provider(api: Api, name: str, field_name: str = "provider") -> ProviderSpec:
    """A provider that is probed: 404 for an unknown name, 409 for a disabled one."""
    config = api.control.config
    try:
        return config.provider(name)
    except KeyError:
        pass
    if (off := config.disabled_provider(name)) is not None:
        raise ApiError(409, f"{field_name}: {name!r} is disabled and not probed ({why(off)})", field_name)
    raise ApiError(404, f"{field_name}: unknown provider {name[:60]!r}", field_name)


# ---------------------------------------------------------------- query parameters, declared once

PROVIDER = NameParam("provider", "only this provider (a configured name; 404 otherwise)")
CATEGORY = EnumParam("category", Category, "only this category")
STATUS = EnumParam("status", ProviderStatus, "only this status")
SEARCH = StrParam("search", "substring of name or description")
PAGE = IntParam("page", 1, 1, MAX_PAGE, "page number, from 1")
PER_PAGE = IntParam("per_page", 50, 1, MAX_PER_PAGE, "entries per page")
ENDPOINT = StrParam("endpoint", "only this endpoint")
OUTCOME = EnumParam("outcome", Outcome, "only this outcome")
OUTCOME_ALIAS = EnumParam("status", Outcome, "alias of outcome (old clients)")
LIMIT = IntParam("limit", 20, 1, 200, "recent failures to list")
HOURS = IntParam("hours", 24, 1, MAX_HOURS, "how far back")
TRIGGER_PROVIDER = NameParam("provider", "the provider (old clients); the body's wins")
TRIGGER_ENDPOINT = NameParam("endpoint", "one endpoint of that provider")


# ---------------------------------------------------------------- read-only views


async def status(request: web.Request) -> Status:
    api = _api(request)
    return views.status_summary(api.store, api.clock())


async def shard(request: web.Request) -> ShardView:
    config = _api(request).control.config
    return {
        "shard": config.shard.index,
        "total_shards": config.shard.total,
        "providers": [p.name for p in config.providers],
        "disabled": [d.name for d in config.disabled],
        "not_here": len(config.not_selected),
    }


async def categories(request: web.Request) -> list[CategorySummary]:
    api = _api(request)
    return views.category_rows(api.store, api.clock())


async def providers(request: web.Request) -> list[Provider]:
    api = _api(request)
    q = request.query
    category, wanted, search = CATEGORY.parse(q), STATUS.parse(q), SEARCH.parse(q)
    now = api.clock()
    rows = views.filter_providers(api.store.every_provider(), category, wanted, search)
    return [views.provider_row(ps, now) for ps in rows]


async def logs(request: web.Request) -> LogPage:
    api = _api(request)
    q = request.query
    page, per_page = PAGE.parse(q), PER_PAGE.parse(q)
    provider = PROVIDER.parse(q, api.provider_names())
    endpoint = ENDPOINT.parse(q)
    outcome = OUTCOME.parse(q)
    if outcome is None:
        outcome = OUTCOME_ALIAS.parse(q)  # the old backends' name for it
    rows = views.filter_history(api.store.history, provider, endpoint, outcome)
    result = paginate(rows, page, per_page)
    return {"total": result.total, "page": result.page, "per_page": result.per_page, "pages": result.pages, "logs": [views.log_entry(r) for r in result.items]}


async def failures(request: web.Request) -> Failures:
    api = _api(request)
    q = request.query
    limit = LIMIT.parse(q)
    provider = PROVIDER.parse(q, api.provider_names())
    rows = [r for r in api.store.failures if provider is None or r.provider == provider]
    return views.failures_report(rows, limit)


async def rate_limits(request: web.Request) -> list[RateLimit]:
    api = _api(request)
    provider = PROVIDER.parse(request.query, api.provider_names())
    return views.rate_limit_rows(api.store, provider, api.clock())


async def config_keys(request: web.Request) -> list[KeyConfig]:
    api = _api(request)
    return views.key_rows(api.control.config, api.store)


async def schedule(request: web.Request) -> list[Schedule]:
    api = _api(request)
    return views.schedule_rows(api.store, api.control.jobs())


async def freshness(request: web.Request) -> list[Freshness]:
    api = _api(request)
    provider = PROVIDER.parse(request.query, api.provider_names())
    rows = views.freshness_rows(api.store, api.clock())
    return [r for r in rows if provider is None or r["provider"] == provider]


# ---- chain heads (issue 11)
CHAIN = NameParam("chain", "only this chain (a configured chain name; 404 otherwise)")


async def chains(request: web.Request) -> list[Chain]:
    api = _api(request)
    owner = api.control.chains
    chain = CHAIN.parse(request.query, owner.names())
    return [r for r in chain_rows(owner, api.store, api.clock()) if chain is None or r["chain"] == chain]


async def health_history(request: web.Request) -> HealthHistory:
    api = _api(request)
    hours = HOURS.parse(request.query)
    provider = PROVIDER.parse(request.query, api.provider_names())
    warning = None
    if api.prometheus is not None:
        try:
            series = await api.prometheus.health(hours, provider)
            return {"source": "prometheus", "hours": hours, "provider": provider, "warning": None, **series}
        except PrometheusError as e:
            warning = _fallback(e, "health")
    memory = health_series(list(api.history.samples), api.clock() - hours * 3600, provider)
    return {"source": "memory", "hours": hours, "provider": provider, "warning": warning, **memory}


async def compliance(request: web.Request) -> Compliance:
    api = _api(request)
    hours = HOURS.parse(request.query)
    provider = PROVIDER.parse(request.query, api.provider_names())
    warning = None
    if api.prometheus is not None:
        try:
            series = await api.prometheus.compliance(hours, provider)
            return {"source": "prometheus", "hours": hours, "provider": provider, "warning": None, **series}
        except PrometheusError as e:
            warning = _fallback(e, "compliance")
    memory = compliance_series(list(api.history.samples), api.clock() - hours * 3600, provider)
    return {"source": "memory", "hours": hours, "provider": provider, "warning": warning, **memory}


def _fallback(e: PrometheusError, chart: str) -> str:
    log.warning("prometheus_query_failed", chart=chart, error=str(e))
    return f"{e}; showing the exporter's in-memory history"


# ---------------------------------------------------------------- actions


async def schedule_trigger(request: web.Request) -> TriggerResult:
    """Run one provider's jobs (or one endpoint's, or all) now; `provider` in the JSON body
    or, as the old backends took it, in the query string. `endpoint` alone: that endpoint
    of every provider that has one."""
    api = _api(request)
    api.require_actions("POST /api/schedule/trigger")
    body = await read_json_body(request, required=False)
    reject_unknown(body, fields_of(TriggerRequest))
    provider = body_str(body, "provider") or TRIGGER_PROVIDER.parse(request.query)
    endpoint = body_str(body, "endpoint") or TRIGGER_ENDPOINT.parse(request.query)
    # `endpoint` alone: that endpoint of every provider that has one.
    if endpoint is not None and provider is None and not any(ep.name == endpoint for p in api.control.config.providers for ep in p.endpoints):
        raise ApiError(404, f"endpoint: no provider has an endpoint {endpoint[:60]!r}", "endpoint")
    if provider is not None:
        p = _provider(api, provider)
        if endpoint is not None and endpoint not in {ep.name for ep in p.endpoints}:
            raise ApiError(404, f"endpoint: provider {provider!r} has no endpoint {endpoint[:60]!r}", "endpoint")
    jobs = api.control.trigger(provider, endpoint)
    if not jobs:
        raise ApiError(409, "the scheduler is not running (started with scheduling off); nothing was triggered", None)
    log.info("schedule_triggered", provider=provider, endpoint=endpoint, jobs=len(jobs))
    return {"status": "triggered", "provider": provider, "endpoint": endpoint, "jobs": jobs}


async def keys_test(request: web.Request) -> KeyTestResult:
    """Probe one endpoint of a provider once per configured key; report each key by env
    var name. What it learns about each key is recorded (crypto_api_key_valid), as a
    scheduled probe's would be; the probe results themselves are not."""
    api = _api(request)
    api.require_actions("POST /api/config/keys/test")
    body = await read_json_body(request, required=True)
    reject_unknown(body, fields_of(KeyTestRequest))
    name = body_str(body, "provider")
    if name is None:
        raise ApiError(400, "provider: required field is missing", "provider")
    p = _provider(api, name)
    if not p.auth.env:
        raise ApiError(422, f"provider: {name!r} is configured without API keys", "provider")
    ep_name = body_str(body, "endpoint")
    try:
        ep = p.endpoint(ep_name) if ep_name is not None else p.endpoints[0]
    except KeyError:
        raise ApiError(404, f"endpoint: provider {name!r} has no endpoint {str(ep_name)[:60]!r}", "endpoint") from None
    try:
        tests = await api.control.test_keys(p.name, ep.name)
    except NotRunning:
        raise ApiError(409, "the exporter is not started", None) from None
    results = [views.key_test_row(t) for t in tests]
    log.info("keys_tested", provider=p.name, endpoint=ep.name, results={x["env"]: x["valid"] for x in results})
    return {"provider": p.name, "endpoint": ep.name, "tested_at": views.iso(api.clock()), "results": results}


# ---------------------------------------------------------------- WebSockets and the document


async def websocket(request: web.Request) -> web.StreamResponse:
    return await _api(request).hub.handle(request)


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_DOCUMENT_JSON, content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")


# ---------------------------------------------------------------- the table

_ACTIONS_OFF = Answer(
    "ALLOWED_IPS is set and the client address is not in it; or this action is off: it needs API_TOKENS (callers authenticate) or --web.enable-actions",
    Error,
)
_ACTIONS_NOTE = "403 unless API_TOKENS is set or the exporter runs with --web.enable-actions."
_WS_DESCRIPTION = (
    "WebSocket (Upgrade: websocket). Every message is a WsMessage; `type` says which `data` it carries. Send "
    '{"type": "subscribe", "types": ["status_update", "provider_status_change"]} to filter, '
    '{"type": "unsubscribe", "types": [...]}, or {"type": "ping"} (see WsClientMessage). The token may be given '
    "as ?token= (or ?api_key=). A plain HTTP GET gets 400."
)


async def feeds_handler(request: web.Request) -> list[Feed]:
    """The WebSocket market-data feeds (web/api/feeds.py)."""
    api = _api(request)
    return feeds_view(api.feeds, api.clock())


async def market_data_handler(request: web.Request) -> web.StreamResponse:
    """/ws/live's hub, with market_data and ping as the default subscription."""
    return await _api(request).hub.handle(request, MARKET_TYPES)


def _websocket(path: str, summary: str) -> Operation:
    return Operation(
        "GET",
        path,
        summary,
        "websocket",
        websocket,
        Answer("Switching protocols; then WsMessage frames", WsMessage),
        status=101,
        params=(TYPES,),
        errors=(400,),
        access=Access.WEBSOCKET,
        description=_WS_DESCRIPTION,
        head=True,
    )


def _html(description: str) -> Answer:
    return Answer(description, str, "text/html")


# ---- status page and badges (issue 16: web/api/status_page.py, badges.py, docs/status-page.md)
_PUBLIC_NOTE = "Open to anyone with PUBLIC_STATUS=true; otherwise guarded as /api/* is."


def _badge(kind: str, handler: Handler, what: str, params: tuple[QueryParam, ...] = ()) -> Operation:
    return Operation(
        "GET",
        f"/badge/{{provider}}/{kind}.svg",
        f"SVG badge: {what}",
        "status",
        handler,
        Answer("a shields-like flat badge", str, SVG),
        params=params,
        errors=(400, 404) if params else (404,),
        access=Access.STATUS,
        description=f"Cache-Control max-age 60 and an ETag (If-None-Match gets 304). {_PUBLIC_NOTE}",
        head=True,
        path_params=(BADGE_PROVIDER,),
    )


# ---- end status page and badges


ROUTES: tuple[Operation, ...] = (
    json_route("GET", "/api/status", status, Status, summary="Counts of providers by status", tag="status"),
    json_route("GET", "/api/shard", shard, ShardView, summary="Which providers this shard owns", tag="config"),
    json_route("GET", "/api/categories", categories, list[CategorySummary], summary="Per category: sources, online ratio, latency", tag="status"),
    json_route(
        "GET",
        "/api/providers",
        providers,
        list[Provider],
        summary="Providers with their endpoints' last results",
        tag="status",
        params=(CATEGORY, STATUS, SEARCH),
        errors=(400,),
    ),
    json_route(
        "GET",
        "/api/logs",
        logs,
        LogPage,
        summary="Recent probes, newest first (the last 1000)",
        tag="status",
        params=(PAGE, PER_PAGE, PROVIDER, ENDPOINT, OUTCOME, OUTCOME_ALIAS),
        errors=(400, 404),
    ),
    json_route(
        "GET",
        "/api/failures",
        failures,
        Failures,
        summary="Failure analysis of the last 200 failed probes",
        tag="status",
        params=(LIMIT, PROVIDER),
        errors=(400, 404),
    ),
    json_route(
        "GET",
        "/api/rate-limits",
        rate_limits,
        list[RateLimit],
        summary="Quotas seen in headers, and client-side budgets",
        tag="status",
        params=(PROVIDER,),
        errors=(400, 404),
    ),
    json_route("GET", "/api/config/keys", config_keys, list[KeyConfig], summary="API keys by env var name, masked", tag="config"),
    json_route(
        "POST",
        "/api/config/keys/test",
        keys_test,
        KeyTestResult,
        summary="Probe a provider's endpoint once per configured key, now",
        tag="config",
        body=KeyTestRequest,
        body_required=True,
        errors=(400, 404, 408, 409, 413, 415, 422),
        answers={403: _ACTIONS_OFF},
        description="One attempt per key, no retry; spends the client-side budget; what it learns about each key updates "
        f"crypto_api_key_valid. 409 before the exporter has started, or for a disabled provider. {_ACTIONS_NOTE}",
    ),
    json_route("GET", "/api/schedule", schedule, list[Schedule], summary="Probe schedule and compliance per provider", tag="schedule"),
    json_route(
        "POST",
        "/api/schedule/trigger",
        schedule_trigger,
        TriggerResult,
        summary="Run one provider's (or endpoint's, or every) probes now",
        tag="schedule",
        params=(TRIGGER_PROVIDER, TRIGGER_ENDPOINT),
        body=TriggerRequest,
        errors=(400, 404, 408, 409, 413, 415),
        answers={403: _ACTIONS_OFF},
        description=f"409 when the exporter runs without its scheduler, or for a disabled provider. {_ACTIONS_NOTE}",
    ),
    json_route(
        "GET",
        "/api/charts/health-history",
        health_history,
        HealthHistory,
        summary="Success rate and status counts over time",
        tag="charts",
        params=(HOURS, PROVIDER),
        errors=(400, 404),
    ),
    json_route(
        "GET",
        "/api/charts/compliance",
        compliance,
        Compliance,
        summary="Schedule compliance over time",
        tag="charts",
        params=(HOURS, PROVIDER),
        errors=(400, 404),
    ),
    json_route(
        "GET",
        "/api/freshness",
        freshness,
        list[Freshness],
        summary="Data age per endpoint against its bound",
        tag="status",
        params=(PROVIDER,),
        errors=(400, 404),
    ),
    # ---- feeds (web/api/feeds.py)
    json_route("GET", "/api/feeds", feeds_handler, list[Feed], summary="WebSocket market-data feeds: connection, silence, gaps, lag, prices", tag="status"),
    Operation(
        "GET",
        "/ws/market_data",
        "Latest prices seen on feeds and probes, at most once a second",
        "websocket",
        market_data_handler,
        Answer("Switching protocols; then WsMessage frames (market_data, ping)", WsMessage),
        status=101,
        params=(MARKET_TYPES,),
        errors=(400,),
        access=Access.WEBSOCKET,
        description="A market_data message carries the prices that changed since the last one (every price in the first). "
        "The /ws/live hub's rules apply: a client that does not read loses its own oldest messages. " + _WS_DESCRIPTION,
        head=True,
    ),
    # ---- end of feeds
    *INCIDENT_ROUTES,  # Alertmanager webhook and the incidents (web/api/incidents.py, docs/incidents.md)
    json_route(
        "GET",
        "/api/chains",
        chains,
        list[Chain],
        summary="Chain heads: reference head, each endpoint's lag and status, the best endpoint",
        tag="status",
        params=(CHAIN,),
        errors=(400, 404),
        description="Reference head: the second-highest head among endpoints on the right chain (docs/chains.md).",
    ),
    _websocket("/ws/live", "Live events: status_update, new_log_entry, rate_limit_alert, provider_status_change, ping"),
    _websocket("/ws", "All live events; accepts subscription messages"),
    _websocket("/ws/master", "Alias of /ws"),
    # Served by web/server.py; here so that they are documented.
    Operation(
        "GET",
        "/metrics",
        "Prometheus exposition",
        "exporter",
        None,
        Answer("text exposition format", str, "text/plain"),
        access=Access.METRICS,
        description="Open unless PROTECT_METRICS=true, then it takes the same tokens and allowlist as /api.",
    ),
    Operation("GET", "/healthz", "Liveness (always open)", "exporter", None, Answer("OK", Ok), access=Access.OPEN),
    Operation(
        "POST",
        "/-/reload",
        "Reload providers.yaml (as SIGHUP does)",
        "exporter",
        None,
        Answer("reloaded", Ok),
        access=Access.OPEN,
        answers={
            403: Answer("the lifecycle API is off (start with --web.enable-lifecycle; SIGHUP always reloads)", Error),
            422: Answer("the file has errors; the last good config keeps running", ReloadFailed),
        },
    ),
    Operation("GET", "/", "Landing page", "docs", None, _html("HTML"), access=Access.OPEN),
    # ---- status page and badges (issue 16)
    Operation(
        "GET",
        "/status",
        "Status page: providers by category, uptime, latency, maintenance, incidents",
        "status",
        status_page,
        _html("HTML page (server-rendered, no script)"),
        access=Access.STATUS,
        description=f"For people without Grafana. Cache-Control max-age 15. {_PUBLIC_NOTE}",
        head=True,
    ),
    _badge("health", health_badge, "the provider's status"),
    _badge("uptime", uptime_badge, "share of successful probes over 24 h or 7 d", (WINDOW,)),
    _badge("latency", latency_badge, "mean probe latency over 24 h"),
    # ---- end status page and badges
    Operation("GET", "/openapi.json", "This document", "docs", openapi_json, Answer("OpenAPI 3.1", JsonObject), access=Access.OPEN, head=True),
    Operation("GET", "/docs", "This document as a browsable page", "docs", docs_page, _html("HTML"), access=Access.OPEN, head=True),
)

# Built once, at import: the table and the models do not change while the process runs.
DOCUMENT = build_document(ROUTES, {"WsMessage": WsMessage, "WsClientMessage": WsClientMessage})
_DOCUMENT_JSON = json.dumps(DOCUMENT)
_DOCS_HTML = render_docs(DOCUMENT)
