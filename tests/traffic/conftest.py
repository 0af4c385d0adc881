from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.traffic import RateLimitConfig, Traffic

from .apps import aiohttp_app, fastapi_app


@dataclass
class Resp:
    status: int
    headers: Mapping[str, str]  # case-insensitive, as each client library gives them
    body: bytes


@dataclass
class Harness:
    """One interface over both frameworks: `request(method, path, ...)` against a real
    app, the registry its metrics went to and its Traffic."""

    framework: str
    registry: CollectorRegistry
    traffic: Traffic
    request: Callable[..., Awaitable[Resp]]

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


Factory = Callable[..., Awaitable[Harness]]


@pytest.fixture(params=["fastapi", "aiohttp"])
async def make_app(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def factory(rate_limit: RateLimitConfig | None = None, **options: Any) -> Harness:
        registry = CollectorRegistry()
        # Distinct clients come through the proxy header (a loopback peer is always
        # 127.0.0.1); test_scope_client checks the plain peer address.
        options.setdefault("client_header", "X-Real-IP")
        if request.param == "fastapi":
            app, traffic = fastapi_app(registry, rate_limit, **options)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1234)), base_url="http://test")
            cleanups.append(client.aclose)

            async def do(method: str, path: str, *, client_ip: str = "10.0.0.1", **kw: Any) -> Resp:
                headers = kw.pop("headers", {}) or {}
                r = await client.request(method, path, headers={**headers, "X-Real-IP": client_ip}, **kw)
                return Resp(r.status_code, r.headers, r.content)

            return Harness("fastapi", registry, traffic, do)
        app_, traffic = aiohttp_app(registry, rate_limit, **options)
        server = TestServer(app_, host="127.0.0.1")
        aclient = TestClient(server)
        await aclient.start_server()
        cleanups.append(aclient.close)

        async def do_aio(method: str, path: str, *, client_ip: str = "10.0.0.1", **kw: Any) -> Resp:
            headers = kw.pop("headers", {}) or {}
            if "content" in kw:  # httpx's name for a raw body
                kw["data"] = kw.pop("content")
            async with aclient.request(method, path, headers={**headers, "X-Real-IP": client_ip}, **kw) as r:
                return Resp(r.status, r.headers, await r.read())

        return Harness("aiohttp", registry, traffic, do_aio)

    yield factory
    for cleanup in cleanups:
        await cleanup()
