"""The server's own metrics: requests by method, route template and code; latency by
route; WebSocket clients and dropped messages.

Under `crypto_api_exporter_` (not `crypto_api_http_`, which is the probes' contract).
Labels carry the route template (`/api/providers`), never a raw path."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ...families import (
    EXPORTER_REQUEST_DURATION,
    EXPORTER_REQUESTS,
    EXPORTER_WS_CLIENTS,
    EXPORTER_WS_DROPPED,
    EXPORTER_WS_MESSAGES,
    REQUEST_BUCKETS,
    Family,
)
from .errors import Handler

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class ApiMetrics:
    requests: Counter
    duration: Histogram
    ws_clients: Gauge
    ws_messages: Counter
    ws_dropped: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ApiMetrics] = weakref.WeakKeyDictionary()


def api_metrics(registry: CollectorRegistry) -> ApiMetrics:
    """The metrics registered on `registry`, created once per registry."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = ApiMetrics(
            requests=Counter(*_args(EXPORTER_REQUESTS), registry=registry),
            duration=Histogram(*_args(EXPORTER_REQUEST_DURATION), buckets=REQUEST_BUCKETS, registry=registry),
            ws_clients=Gauge(*_args(EXPORTER_WS_CLIENTS), registry=registry),
            ws_messages=Counter(*_args(EXPORTER_WS_MESSAGES), registry=registry),
            ws_dropped=Counter(*_args(EXPORTER_WS_DROPPED), registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics


def _args(family: Family) -> tuple[str, str, tuple[str, ...]]:
    """prometheus-client's (name, documentation, labelnames) for one of our families."""
    return family.base_name, family.help, family.labels


def route_template(request: web.Request) -> str:
    """`/api/providers`, or `unmatched` for 404s: a raw path would make a label per URL."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    return resource.canonical


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def instrument_middleware(metrics: ApiMetrics) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def instrument(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            route, method = route_template(request), method_label(request.method)
            # A WebSocket's duration is its connection's lifetime: count it, do not time it.
            if status != 101:
                metrics.duration.labels(method, route).observe(time.perf_counter() - started)
            metrics.requests.labels(method, route, str(status)).inc()

    return instrument
