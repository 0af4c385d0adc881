"""aiohttp middleware. `http_route` is the matched resource's canonical template
(`/items/{id}`); a request no resource matched has none.

A WebSocket handler returns only when its connection closes, hours later maybe: timed
around the handler, the upgrade would be one active request all that time and then one
observation of the connection's lifetime, a "slow request" for the latency SLO. So an
upgrade is recorded when its `101` is prepared (`upgrade_hook`, on the app's
`on_response_prepare` signal): the duration is the handshake's, the request stops being
active then, and the connection's lifetime is no request's duration.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import semconv
from .ratelimit import RateLimiter
from .store import Traffic

_perf = time.perf_counter
_KNOWN = semconv.KNOWN_METHODS
# request[_UPGRADE]: what the middleware knew of an upgrade request, for upgrade_hook;
# emptied once the hook has recorded it. A typed key where aiohttp has them (3.13+; a
# plain string key warns there), a string before.
_UPGRADE: Any = web.RequestKey("exporter.traffic.upgrade", list) if hasattr(web, "RequestKey") else "exporter.traffic.upgrade"


def route_template(request: web.Request) -> str:
    resource: Any = getattr(request.match_info.route, "resource", None)
    if resource is None:
        return semconv.UNMATCHED_ROUTE
    canonical = resource.canonical
    return canonical if isinstance(canonical, str) else semconv.UNMATCHED_ROUTE


def traffic_middleware(
    traffic: Traffic, limiter: RateLimiter | None = None, registry: CollectorRegistry | None = None, metrics_path: str | None = None
) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = _perf()
        path = request.path
        own = traffic.paths.get(path)
        if own is not None:
            reply = own(request.headers.get("X-API-Key"), dict(request.query))
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        if path == metrics_path:
            return web.Response(body=generate_latest(registry) if registry is not None else b"", headers={"Content-Type": CONTENT_TYPE_LATEST})
        method = request.method
        if method not in _KNOWN:
            method = semconv.OTHER_METHOD
        address = (request.headers.get(traffic.client_header) if traffic.client_header else None) or request.remote or ""
        request_size = request.content_length or 0
        extra: tuple[tuple[str, str], ...] = ()
        if limiter is not None:
            decision = limiter.check(address, path)
            extra = decision.headers
            if not decision.allowed:
                route = route_template(request)
                key = (decision.group, route)
                traffic.rate_limited[key] = traffic.rate_limited.get(key, 0) + 1
                refused = web.json_response({"error": "rate limit exceeded"}, status=429, headers=dict(extra))
                traffic.record(method, route, 429, _perf() - start, request_size, refused.content_length or 0, address, path)
                return refused
        active = traffic.active
        active[method] = active.get(method, 0) + 1
        pending: list[Any] | None = None
        if "Upgrade" in request.headers:  # rare: only then does upgrade_hook have work
            pending = request[_UPGRADE] = [start, method, address, request_size]
        status = 500
        size = 0
        try:
            response = await handler(request)
            status = response.status
            # A streamed response was written by the handler; a plain one is written
            # after the middleware returns, its length already known.
            size = response.body_length if response.prepared else (response.content_length or 0)
            if extra and not response.prepared:
                response.headers.extend(extra)
            return response
        except web.HTTPException as exc:
            status = exc.status
            size = len(exc.text or "")
            raise
        finally:
            if pending is None or pending:  # unless upgrade_hook has recorded it (a 101)
                active[method] -= 1
                traffic.record(method, route_template(request), status, _perf() - start, request_size, size, address, path)

    return middleware


def upgrade_hook(traffic: Traffic) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """For `app.on_response_prepare` (instrument() adds it): records a `101` when it is
    prepared, not when the WebSocket closes."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if response.status != 101:
            return
        pending = request.get(_UPGRADE)
        if not pending:
            return
        start, method, address, request_size = pending
        pending.clear()
        traffic.active[method] -= 1
        traffic.record(method, route_template(request), 101, _perf() - start, request_size, 0, address, request.path)

    return on_prepare
