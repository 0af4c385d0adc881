"""ASGI middleware (FastAPI, Starlette, any ASGI app).

`http_route` comes from `scope["route"]`, which Starlette's router (and FastAPI's) sets
on the very scope dict the middleware passed down: the template is known once the app
returns, without matching the path a second time as some exporters do.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import semconv
from .ratelimit import RateLimiter
from .store import Reply, Traffic

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_perf = time.perf_counter
_KNOWN = semconv.KNOWN_METHODS
_OTHER = semconv.OTHER_METHOD


def route_template(scope: Scope, root_path: str) -> str:
    route = scope.get("route")
    if route is None or hasattr(route, "routes"):  # no match, or a Mount whose inside did not match
        return semconv.UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return semconv.UNMATCHED_ROUTE
    # Under a Mount, the router appended the mount's prefix to root_path.
    prefix: str = scope.get("root_path", "")[len(root_path) :]
    return prefix + template


class TrafficMiddleware:
    def __init__(
        self, app: ASGIApp, traffic: Traffic, limiter: RateLimiter | None = None, registry: CollectorRegistry | None = None, metrics_path: str | None = None
    ) -> None:
        self.app = app
        self.traffic = traffic
        self.limiter = limiter
        self.registry = registry
        self.metrics_path = metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = _perf()
        traffic = self.traffic
        path: str = scope["path"]
        method: str = scope["method"]
        if method not in _KNOWN:
            method = _OTHER
        client = scope.get("client")
        address = client[0] if client else ""
        request_size = 0
        if traffic.client_header is None:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    request_size = int(value) if value.isdigit() else 0
                    break
        else:
            wanted = traffic.client_header.encode()
            for name, value in scope["headers"]:
                if name == b"content-length":
                    request_size = int(value) if value.isdigit() else 0
                elif name == wanted:
                    address = value.decode("latin-1")
        own = traffic.paths.get(path)
        if own is not None or path == self.metrics_path:
            await self._serve_own(scope, send, own)
            return
        extra: tuple[tuple[str, str], ...] = ()
        if self.limiter is not None:
            decision = self.limiter.check(address, path)
            extra = decision.headers
            if not decision.allowed:
                key = (decision.group, semconv.UNMATCHED_ROUTE)
                traffic.rate_limited[key] = traffic.rate_limited.get(key, 0) + 1
                body = b'{"error":"rate limit exceeded"}'
                await _reply(send, Reply(429, (("Content-Type", "application/json"), *extra), body))
                traffic.record(method, semconv.UNMATCHED_ROUTE, 429, _perf() - start, request_size, len(body), address, path)
                return
        active = traffic.active
        active[method] = active.get(method, 0) + 1
        status = 500
        size = 0
        encoded = [(k.lower().encode(), v.encode()) for k, v in extra]

        async def send_wrapper(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                if encoded:
                    message["headers"] = [*message.get("headers", ()), *encoded]
            await send(message)

        root_path = scope.get("root_path", "")
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            active[method] -= 1
            traffic.record(method, route_template(scope, root_path), status, _perf() - start, request_size, size, address, path)

    async def _serve_own(self, scope: Scope, send: Send, view: Callable[[str | None, dict[str, str]], Reply] | None) -> None:
        if view is None:
            registry = self.registry
            body = generate_latest(registry) if registry is not None else b""
            await _reply(send, Reply(200, (("Content-Type", CONTENT_TYPE_LATEST),), body))
            return
        api_key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = value.decode("latin-1")
                break
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        await _reply(send, view(api_key, query))


async def _reply(send: Send, reply: Reply) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
