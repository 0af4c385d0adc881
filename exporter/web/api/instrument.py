"""The server's own metrics.

Requests: the traffic middleware (exporter/traffic/, issue 15), the same one users put
on their own APIs: OpenTelemetry's HTTP server names (`http_server_request_duration_seconds`
by `http_request_method`, `http_route`, `http_response_status_code`, active requests,
body sizes) with route templates as `http_route`, so a client cannot create series.
Metrics only: the exporter keeps no per-client analytics (docs/metrics.md, "Changed").

WebSockets: clients connected and messages queued or dropped, under
`crypto_api_exporter_` (not `crypto_api_http_`, which is the probes' contract)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from ...families import EXPORTER_WS_CLIENTS, EXPORTER_WS_DROPPED, EXPORTER_WS_MESSAGES, Family
from ...traffic import Traffic
from ...traffic.aiohttp_mw import traffic_middleware, upgrade_hook
from ...traffic.store import TrafficCollector


@dataclass(frozen=True)
class ApiMetrics:
    traffic: Traffic
    ws_clients: Gauge
    ws_messages: Counter
    ws_dropped: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ApiMetrics] = weakref.WeakKeyDictionary()


def api_metrics(registry: CollectorRegistry) -> ApiMetrics:
    """The metrics registered on `registry`, created once per registry: a second web app
    on the same registry shares them instead of registering the families twice (the
    exporter's registry does not describe collectors, so nothing would refuse it)."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        # analytics=False: no client addresses, sketches or raw log in memory, and no
        # /dashboard or /raw_logs (the exporter's API is for operators and Grafana; the
        # per-client figures are for users' public APIs).
        traffic = Traffic(analytics=False)
        registry.register(TrafficCollector(traffic))
        metrics = ApiMetrics(
            traffic=traffic,
            ws_clients=Gauge(*_args(EXPORTER_WS_CLIENTS), registry=registry),
            ws_messages=Counter(*_args(EXPORTER_WS_MESSAGES), registry=registry),
            ws_dropped=Counter(*_args(EXPORTER_WS_DROPPED), registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics


def _args(family: Family) -> tuple[str, str, tuple[str, ...]]:
    """prometheus-client's (name, documentation, labelnames) for one of our families."""
    return family.base_name, family.help, family.labels


def instrument(app: web.Application, metrics: ApiMetrics) -> web.middleware:  # type: ignore[valid-type]
    """The request middleware for `app` (the caller puts it outermost) and the hook that
    records a WebSocket upgrade at its handshake. `/metrics` and `/healthz` go through it
    like any route: the exporter's own handler serves `/metrics` (streamed, gzip), and a
    scrape's or a liveness probe's duration is worth having."""
    app.on_response_prepare.append(upgrade_hook(metrics.traffic))
    return traffic_middleware(metrics.traffic)
