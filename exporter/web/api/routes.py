"""The JSON handlers of the old backends' contract. Thin: parse and validate parameters,
read state through `views`, answer JSON. The only actions are the two documented POSTs."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from ...config import Provider
from ...model import Category, Outcome, ProviderStatus
from ...state import State
from ..control import ExporterControl, NotRunning
from . import views
from .errors import ApiError
from .events import Hub
from .history import HistoryRecorder, PrometheusError, PrometheusHistory, compliance_series, health_series
from .query import MAX_PAGE, MAX_PER_PAGE, enum_param, int_param, name_param, paginate, str_param
from .settings import ApiSettings

log = structlog.get_logger()
MAX_BODY = 16 * 1024
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

    def provider_names(self) -> list[str]:
        return [p.name for p in self.control.config.providers]

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
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _api(request: web.Request) -> Api:
    return request.app[API_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def read_json_body(request: web.Request, required: bool) -> dict[str, Any]:
    """The JSON object body; an empty body is `{}` unless `required`."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"body: larger than {MAX_BODY} bytes", "body")
    raw = b""
    while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):  # chunked bodies come in pieces
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body: larger than {MAX_BODY} bytes", "body")
    if not raw.strip():
        if required:
            raise ApiError(400, 'body: a JSON object is required, e.g. {"provider": "etherscan"}', "body")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body: malformed JSON ({type(e).__name__})", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body: must be a JSON object", "body")
    return body


def body_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name}: must be a non-empty string", name)
    return value.strip()


def reject_unknown(body: dict[str, Any], known: set[str]) -> None:
    for key in body:
        if key not in known:
            name = str(key)[:60]
            raise ApiError(400, f"{name}: unknown field (known: {', '.join(sorted(known))})", name)


def _provider(api: Api, name: str, field_name: str = "provider") -> Provider:
    try:
        return api.control.config.provider(name)
    except KeyError:
        raise ApiError(404, f"{field_name}: unknown provider {name[:60]!r}", field_name) from None


# ---------------------------------------------------------------- read-only views


async def status(request: web.Request) -> web.Response:
    api = _api(request)
    return _json(views.status_summary(api.store, api.clock()))


async def categories(request: web.Request) -> web.Response:
    api = _api(request)
    return _json(views.category_rows(api.store, api.clock()))


async def providers(request: web.Request) -> web.Response:
    api = _api(request)
    q = request.query
    category = enum_param(q, "category", Category)
    wanted = enum_param(q, "status", ProviderStatus)
    search = str_param(q, "search")
    now = api.clock()
    rows = views.filter_providers(api.store.providers.values(), category, wanted, search)
    return _json([views.provider_row(ps, now) for ps in rows])


async def logs(request: web.Request) -> web.Response:
    api = _api(request)
    q = request.query
    page = int_param(q, "page", 1, 1, MAX_PAGE)
    per_page = int_param(q, "per_page", 50, 1, MAX_PER_PAGE)
    provider = name_param(q, "provider", api.provider_names())
    endpoint = str_param(q, "endpoint")
    outcome = enum_param(q, "outcome", Outcome)
    if outcome is None:
        outcome = enum_param(q, "status", Outcome)  # the old backends' name for it
    rows = views.filter_history(api.store.history, provider, endpoint, outcome)
    result = paginate(rows, page, per_page)
    return _json(
        {
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
            "pages": result.pages,
            "logs": [views.log_entry(r) for r in result.items],  # type: ignore[arg-type]
        }
    )


async def failures(request: web.Request) -> web.Response:
    api = _api(request)
    q = request.query
    limit = int_param(q, "limit", 20, 1, 200)
    provider = name_param(q, "provider", api.provider_names())
    rows = [r for r in api.store.failures if provider is None or r.provider == provider]
    return _json(views.failures_report(rows, limit))


async def rate_limits(request: web.Request) -> web.Response:
    api = _api(request)
    provider = name_param(request.query, "provider", api.provider_names())
    return _json(views.rate_limit_rows(api.store, provider, api.clock()))


async def config_keys(request: web.Request) -> web.Response:
    api = _api(request)
    return _json(views.key_rows(api.control.config, api.store))


async def schedule(request: web.Request) -> web.Response:
    api = _api(request)
    return _json(views.schedule_rows(api.store, api.control.jobs()))


async def freshness(request: web.Request) -> web.Response:
    api = _api(request)
    provider = name_param(request.query, "provider", api.provider_names())
    rows = views.freshness_rows(api.store, api.clock())
    return _json([r for r in rows if provider is None or r["provider"] == provider])


async def _chart(request: web.Request, kind: str) -> web.Response:
    api = _api(request)
    hours = int_param(request.query, "hours", 24, 1, MAX_HOURS)
    provider = name_param(request.query, "provider", api.provider_names())
    warning = None
    if api.prometheus is not None:
        try:
            series = await (api.prometheus.health(hours, provider) if kind == "health" else api.prometheus.compliance(hours, provider))
            return _json({"source": "prometheus", "hours": hours, "provider": provider, "warning": None, **series})
        except PrometheusError as e:
            warning = f"{e}; showing the exporter's in-memory history"
            log.warning("prometheus_query_failed", chart=kind, error=str(e))
    since = api.clock() - hours * 3600
    samples = list(api.history.samples)
    series = health_series(samples, since, provider) if kind == "health" else compliance_series(samples, since, provider)
    return _json({"source": "memory", "hours": hours, "provider": provider, "warning": warning, **series})


async def health_history(request: web.Request) -> web.Response:
    return await _chart(request, "health")


async def compliance(request: web.Request) -> web.Response:
    return await _chart(request, "compliance")


# ---------------------------------------------------------------- actions


async def schedule_trigger(request: web.Request) -> web.Response:
    """Run one provider's jobs (or one endpoint's, or all) now; `provider` in the JSON body
    or, as the old backends took it, in the query string. `endpoint` alone: that endpoint
    of every provider that has one."""
    api = _api(request)
    api.require_actions("POST /api/schedule/trigger")
    body = await read_json_body(request, required=False)
    reject_unknown(body, {"provider", "endpoint"})
    provider = body_str(body, "provider") or str_param(request.query, "provider")
    endpoint = body_str(body, "endpoint") or str_param(request.query, "endpoint")
    if endpoint is not None and provider is None:  # that endpoint of every provider that has one
        if not any(ep.name == endpoint for p in api.control.config.providers for ep in p.endpoints):
            raise ApiError(404, f"endpoint: no provider has an endpoint {endpoint[:60]!r}", "endpoint")
    if provider is not None:
        p = _provider(api, provider)
        if endpoint is not None and endpoint not in {ep.name for ep in p.endpoints}:
            raise ApiError(404, f"endpoint: provider {provider!r} has no endpoint {endpoint[:60]!r}", "endpoint")
    jobs = api.control.trigger(provider, endpoint)
    if not jobs:
        raise ApiError(409, "the scheduler is not running (started with scheduling off); nothing was triggered", None)
    log.info("schedule_triggered", provider=provider, endpoint=endpoint, jobs=len(jobs))
    return _json({"status": "triggered", "provider": provider, "endpoint": endpoint, "jobs": jobs})


async def keys_test(request: web.Request) -> web.Response:
    """Probe one endpoint of a provider once per configured key; report each key by env
    var name. What it learns about each key is recorded (crypto_api_key_valid), as a
    scheduled probe's would be; the probe results themselves are not."""
    api = _api(request)
    api.require_actions("POST /api/config/keys/test")
    body = await read_json_body(request, required=True)
    reject_unknown(body, {"provider", "endpoint"})
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
        raise ApiError(404, f"endpoint: provider {name!r} has no endpoint {ep_name[:60]!r}", "endpoint") from None
    try:
        tests = await api.control.test_keys(p.name, ep.name)
    except NotRunning:
        raise ApiError(409, "the exporter is not started", None) from None
    results = [views.key_test_row(t) for t in tests]
    log.info("keys_tested", provider=p.name, endpoint=ep.name, results={x["env"]: x["valid"] for x in results})
    return _json({"provider": p.name, "endpoint": ep.name, "tested_at": views.iso(api.clock()), "results": results})


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api/status", status),
    ("GET", "/api/categories", categories),
    ("GET", "/api/providers", providers),
    ("GET", "/api/logs", logs),
    ("GET", "/api/failures", failures),
    ("GET", "/api/rate-limits", rate_limits),
    ("GET", "/api/config/keys", config_keys),
    ("POST", "/api/config/keys/test", keys_test),
    ("GET", "/api/schedule", schedule),
    ("POST", "/api/schedule/trigger", schedule_trigger),
    ("GET", "/api/charts/health-history", health_history),
    ("GET", "/api/charts/compliance", compliance),
    ("GET", "/api/freshness", freshness),
)
