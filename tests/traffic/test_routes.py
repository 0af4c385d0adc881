"""Route templates under mounts and sub-applications, and the middleware's own paths."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from exporter.traffic import instrument, semconv

from .test_middleware import series


async def test_starlette_mount_gives_the_full_template() -> None:
    async def user(request: object) -> PlainTextResponse:
        return PlainTextResponse("u")

    inner = Starlette(routes=[Route("/users/{user_id:int}", user)])
    app = FastAPI()
    app.mount("/v1", inner)
    app.router.routes.append(Mount("/v2", routes=[Route("/users/{user_id}", user)]))
    registry = CollectorRegistry()
    instrument(app, registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/v1/users/5")).status_code == 200
        assert (await client.get("/v2/users/abc")).status_code == 200
        assert (await client.get("/v1/nothing/here")).status_code == 404
        metrics = await client.get("/metrics")
    assert series(registry) == {("GET", "/v1/users/{user_id}", "200"), ("GET", "/v2/users/{user_id}", "200"), ("GET", "", "404")}
    assert metrics.status_code == 200 and b"http_server_request_duration_seconds_bucket" in metrics.content


async def test_aiohttp_subapp_gives_the_full_template() -> None:
    async def user(request: web.Request) -> web.Response:
        return web.Response(text="u")

    sub = web.Application()
    sub.router.add_get("/users/{user_id}", user)
    app = web.Application()
    app.add_subapp("/v1", sub)
    registry = CollectorRegistry()
    instrument(app, registry=registry)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/v1/users/5")).status == 200
        assert (await client.get("/v1/nothing")).status == 404
        metrics = await client.get("/metrics")
        assert b"http_server_request_duration_seconds_bucket" in await metrics.read()
    assert series(registry) == {("GET", "/v1/users/{user_id}", "200"), ("GET", semconv.UNMATCHED_ROUTE, "404")}


def test_instrument_refuses_what_it_cannot_instrument() -> None:
    registry = CollectorRegistry()
    with pytest.raises(TypeError, match=r"aiohttp web\.Application or a Starlette/FastAPI app, got object"):
        instrument(object(), registry=registry)
    assert list(registry.collect()) == []  # nothing registered for it
