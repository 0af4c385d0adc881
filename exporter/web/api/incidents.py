"""The incident routes: Alertmanager's webhook in, incidents out (docs/incidents.md).

`INCIDENT_ROUTES` joins the one route table (routes.py), so the exporter serves them
(in-process: its own facts, read from the store through the views) and the OpenAPI
document describes them; the standalone service (`crypto-api-exporter incidents`) serves
the same operations from `build_incident_app`, with facts read over HTTP."""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ... import limits
from ...families import INCIDENT_LLM_REQUESTS, INCIDENT_NOTIFICATIONS, INCIDENTS_OPEN
from ...incidents.explain import Explanation
from ...incidents.facts import Facts, facts_from_api
from ...incidents.payload import PayloadError
from ...incidents.records import Action, Incident, IncidentDetail, IncidentStatus, Severity
from ...incidents.service import IncidentService, IncidentSettings
from ...incidents.store import Filters
from ...state import State
from ..control import ExporterControl
from . import views
from .auth import access_middleware
from .body import read_json_body
from .chains import chain_rows
from .errors import ApiError, json_errors
from .instrument import api_metrics, instrument
from .models import (
    NAME_MAX,
    NAME_PATTERN,
    AlertmanagerNotification,
    Error,
    IncidentAlert,
    IncidentDetailView,
    IncidentEvent,
    IncidentExplanation,
    IncidentPage,
    IncidentSummary,
    Ok,
    WebhookResult,
)
from .openapi import Answer, Operation, json_route
from .query import EnumParam, IntParam, NameParam, Schema
from .settings import ApiSettings
from .status_page import IncidentBrief as PageIncident
from .status_page import IncidentSource

log = structlog.get_logger()
INCIDENTS_KEY = web.AppKey("incidents", IncidentService)
WEBHOOK_PATH = "/api/incidents/webhook"
MAX_PER_PAGE = 200


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class PathId:
    """A positive integer id in the path: 400 for anything else."""

    name: str
    description: str
    hi: int = 10**12 - 1

    def parse(self, match: Mapping[str, str]) -> int:
        raw = match.get(self.name, "")
        if not re.fullmatch(r"[0-9]{1,12}", raw) or not 1 <= int(raw) <= self.hi:
            raise ApiError(400, f"{self.name}: must be an integer between 1 and {self.hi}, got {raw[:40]!r}", self.name)
        return int(raw)

    def schema(self) -> Schema:
        return {"type": "integer", "minimum": 1, "maximum": self.hi}


_DURATION = re.compile(r"([0-9]{1,6})([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class SinceParam:
    """`since`: an ISO 8601 time (`2026-05-01T12:00:00Z`), or a duration back from now (`30m`, `24h`, `7d`)."""

    name: str
    description: str

    def parse(self, query: Mapping[str, str], now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        raw = (query.get(self.name) or "").strip()
        if not raw:
            return None
        if m := _DURATION.fullmatch(raw):
            return now - int(m.group(1)) * _SECONDS[m.group(2)]
        try:
            moment = datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError:
            raise ApiError(400, f"{self.name}: an ISO 8601 time (2026-05-01T12:00:00Z) or a duration (30m, 24h, 7d), got {raw[:40]!r}", self.name) from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    def schema(self) -> Schema:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "pattern": r"^([0-9]{1,6}[smhd])?$"}]}


STATUS = EnumParam("status", IncidentStatus, "only open, or only resolved, incidents")
SEVERITY = EnumParam("severity", Severity, "only this severity (the alerts' highest)")
PROVIDER = NameParam("provider", "only incidents that affect this provider")
SINCE = SinceParam("since", "only incidents updated at or after this time: ISO 8601, or a duration back from now (30m, 24h, 7d)")
PAGE = IntParam("page", 1, 1, limits.API_PAGE_MAX, "page number, from 1")
PER_PAGE = IntParam("per_page", 50, 1, MAX_PER_PAGE, "incidents per page, newest first")
INCIDENT_ID = PathId("id", "the incident's id")


# ---------------------------------------------------------------- views


def _explanation(d: Mapping[str, Any] | None) -> IncidentExplanation | None:
    if d is None:
        return None
    e = Explanation.from_json(d)
    return {
        "cause": e.cause.value,
        "title": e.title,
        "summary": e.summary,
        "remediation": e.remediation,
        "facts": list(e.facts),
        "facts_source": e.facts_source,
        "source": "llm" if e.source == "llm" else "rules",
        "llm_summary": e.llm_summary,
        "explained_at": views.iso(e.explained_at),
    }


def incident_summary(i: Incident) -> IncidentSummary:
    e = Explanation.from_json(i.explanation) if i.explanation else None
    return {
        "id": i.id,
        "title": i.title,
        "status": i.status.value,
        "severity": i.severity.value,
        "started_at": views.iso(i.started_at),
        "updated_at": views.iso(i.updated_at),
        "resolved_at": views.iso(i.resolved_at),
        "providers": list(i.providers),
        "endpoints": list(i.endpoints),
        "categories": list(i.categories),
        "chains": list(i.chains),
        "alertnames": list(i.alertnames),
        "alerts_firing": i.alerts_firing,
        "alerts_total": i.alerts_total,
        "notifications": i.notifications,
        "cause": e.cause.value if e else None,
        "summary": e.text if e else None,
    }


def incident_detail(d: IncidentDetail) -> IncidentDetailView:
    i = d.incident
    alerts: list[IncidentAlert] = [
        {
            "fingerprint": a.fingerprint,
            "status": "firing" if a.status == "firing" else "resolved",
            "alertname": a.labels.get("alertname", ""),
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "starts_at": views.iso(a.starts_at),
            "ends_at": views.iso(a.ends_at),
        }
        for a in d.alerts
    ]
    timeline: list[IncidentEvent] = [{"at": views.iso(ev.at), "kind": ev.kind.value, "detail": ev.detail, "alerts": list(ev.alerts)} for ev in d.timeline]
    return {
        **incident_summary(i),
        "group_key": i.group_key,
        "receiver": i.receiver,
        "external_url": i.external_url,
        "explanation": _explanation(i.explanation),
        "alerts": alerts,
        "timeline": timeline,
        "events_dropped": i.events_dropped,
    }


# ---------------------------------------------------------------- handlers


def _service(request: web.Request) -> IncidentService:
    return request.app[INCIDENTS_KEY]


async def webhook(request: web.Request) -> WebhookResult:
    """Alertmanager's webhook_config posts here (alertmanager/alertmanager.yml, receiver `incidents`)."""
    service = _service(request)
    body = await read_json_body(request, required=True, max_bytes=limits.INCIDENT_WEBHOOK_BYTES)
    try:
        result = await service.receive(body)
    except PayloadError as e:
        raise ApiError(400, str(e), e.field.split(".")[0].split("[")[0]) from None
    return {"status": "ok", "action": result.action.value, "incident": result.incident_id}


async def incidents(request: web.Request) -> IncidentPage:
    service = _service(request)
    q = request.query
    page, per_page = PAGE.parse(q), PER_PAGE.parse(q)
    provider = PROVIDER.parse(q)
    if provider is not None and (len(provider) > NAME_MAX or not re.fullmatch(NAME_PATTERN, provider)):
        # No list of known names here (the standalone service has none): the documented pattern.
        raise ApiError(400, f"provider: a provider name ({NAME_PATTERN}, at most {NAME_MAX} characters), got {provider[:40]!r}", "provider")
    filters = Filters(STATUS.parse(q), provider, SEVERITY.parse(q), SINCE.parse(q, service.clock()))
    total, rows = await service.page(filters, page, per_page)
    return {"total": total, "page": page, "per_page": per_page, "pages": max(math.ceil(total / per_page), 1), "incidents": [incident_summary(i) for i in rows]}


async def incident(request: web.Request) -> IncidentDetailView:
    service = _service(request)
    incident_id = INCIDENT_ID.parse(request.match_info)
    detail = await service.get(incident_id)
    if detail is None:
        raise ApiError(404, f"id: no incident {incident_id} (it may have passed the retention bound)", "id")
    return incident_detail(detail)


INCIDENT_ROUTES: tuple[Operation, ...] = (
    json_route(
        "POST",
        WEBHOOK_PATH,
        webhook,
        WebhookResult,
        summary="Alertmanager webhook receiver: notifications grouped into incidents",
        tag="incidents",
        body=AlertmanagerNotification,
        body_required=True,
        errors=(400, 408, 415),
        answers={413: Answer(f"body larger than {limits.INCIDENT_WEBHOOK_BYTES // limits.MIB} MiB: set max_alerts on the receiver", Error)},
        description="Point a webhook_config with send_resolved: true at it, on a `continue: true` route beside the real receivers "
        "(paging never depends on it). Repeats and retries change nothing but a counter (action `repeated`).",
    ),
    json_route(
        "GET",
        "/api/incidents",
        incidents,
        IncidentPage,
        summary="Incidents, newest first, with their explanation's summary",
        tag="incidents",
        params=(STATUS, PROVIDER, SEVERITY, SINCE, PAGE, PER_PAGE),
        errors=(400,),
    ),
    json_route(
        "GET",
        "/api/incidents/{id:[0-9]+}",  # digits only: /api/incidents/webhook is another resource
        incident,
        IncidentDetailView,
        summary="One incident: its alerts, timeline and explanation",
        tag="incidents",
        path_params=(INCIDENT_ID,),
        errors=(400,),
        answers={404: Answer("no incident with this id (or it passed the retention bound)", Error)},
    ),
)


# ---------------------------------------------------------------- in the exporter's process


class ApiFacts:
    """The facts from the exporter's own store, through the same views as the JSON API."""

    def __init__(self, store: State, control: ExporterControl, clock: Callable[[], float]) -> None:
        self.store = store
        self.control = control
        self.clock = clock

    async def gather(self, providers: Sequence[str]) -> Facts:
        now = self.clock()
        wanted = set(providers)
        rows = [views.provider_row(ps, now) for ps in self.store.every_provider() if ps.name in wanted]
        logs = [views.log_entry(r) for r in self.store.history if r.provider in wanted]
        logs.reverse()  # newest first, as /api/logs answers
        return facts_from_api(
            "exporter",
            providers,
            rows,
            logs,
            views.rate_limit_rows(self.store, None, now),
            views.key_rows(self.control.config, self.store),
            chain_rows(self.control.chains, self.store, now),
        )


def setup_incidents(
    app: web.Application,
    facts: ApiFacts,
    settings: IncidentSettings,
    tokens: Sequence[str] = (),
    registry: CollectorRegistry | None = None,
) -> IncidentService:
    """The in-process incident service: its routes read it from the app, the exporter's
    state gives it facts, its store opens and closes with the app. The providers' keys and
    the API's tokens are masked in every LLM prompt and Slack message."""
    control = facts.control
    service = IncidentService(settings, facts, secrets=lambda: (*control.config.secrets(), *tokens), clock=facts.clock)
    if registry is not None:
        registry.register(IncidentCollector(service))
    _attach(app, service)
    return service


def status_source(service: IncidentService) -> IncidentSource:
    """The status page's incidents from the service: every open one (an old outage must
    not drop off behind newer resolved ones), then the newest of the rest."""

    async def source(limit: int) -> list[PageIncident]:
        opened = await service.recent_incidents(limit, Filters(status=IncidentStatus.OPEN))
        newest = await service.recent_incidents(limit)
        seen = {b.id for b in opened}
        return [
            {
                "id": str(b.id),
                "title": b.title,
                "status": "open" if b.status is IncidentStatus.OPEN else "resolved",
                "severity": b.severity.value,
                "started_at": b.started_at,
                "resolved_at": b.resolved_at,
                "providers": list(b.providers),
                "explanation": b.explanation or "Not explained yet.",
            }
            for b in [*opened, *(b for b in newest if b.id not in seen)]
        ]

    return source


def _attach(app: web.Application, service: IncidentService) -> None:
    """The routes find the service in the app; it opens and closes with the app."""
    app[INCIDENTS_KEY] = service

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)


class IncidentCollector(Collector):
    """The service's counts as metrics; read from memory, no I/O (collect() runs on the loop)."""

    def __init__(self, service: IncidentService) -> None:
        self.service = service

    def collect(self) -> Any:
        yield GaugeMetricFamily(INCIDENTS_OPEN.name, INCIDENTS_OPEN.help, value=self.service.open_incidents)
        notifications = CounterMetricFamily(INCIDENT_NOTIFICATIONS.base_name, INCIDENT_NOTIFICATIONS.help, labels=INCIDENT_NOTIFICATIONS.labels)
        for action in Action:
            notifications.add_metric([action.value], self.service.notifications.get(action.value, 0))
        yield notifications
        llm = CounterMetricFamily(INCIDENT_LLM_REQUESTS.base_name, INCIDENT_LLM_REQUESTS.help, labels=INCIDENT_LLM_REQUESTS.labels)
        for result in ("ok", "failed"):
            llm.add_metric([result], self.service.llm_calls.get(result, 0))
        yield llm


# ---------------------------------------------------------------- the standalone service


async def _healthz(request: web.Request) -> web.Response:
    ok: Ok = {"status": "ok"}
    return web.json_response(ok)


def build_incident_app(service: IncidentService, settings: ApiSettings) -> web.Application:
    """`crypto-api-exporter incidents`: the incident routes, /healthz and /metrics, with the
    JSON API's access rules (API_TOKENS, ALLOWED_IPS) and errors."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(IncidentCollector(service))
    app = web.Application()
    # Its own requests under the OTel names, as the exporter's API counts its own (the
    # webhook's latency is Alertmanager's view of this service).
    app.middlewares.extend([instrument(app, api_metrics(registry)), access_middleware(settings), json_errors])
    for op in INCIDENT_ROUTES:
        assert op.handler is not None
        app.router.add_route(op.method, op.path, op.handler)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", metrics)
    _attach(app, service)
    return app
