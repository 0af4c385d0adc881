"""A WebSocket on an instrumented aiohttp app: recorded when its 101 is prepared (the
handshake), not active while it lives, not observed again when it closes."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.traffic import instrument, semconv

D = semconv.DURATION
UPGRADE = {semconv.METHOD: "GET", semconv.ROUTE: "/ws/{room}", semconv.STATUS: "101"}


async def test_an_upgrade_is_recorded_at_the_handshake() -> None:
    opened = asyncio.Event()
    release = asyncio.Event()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.set()
        await release.wait()  # a connection that lives as long as the test says
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws/{room}", ws_handler)
    registry = CollectorRegistry()
    instrument(app, registry=registry, metrics_path=None)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.ws_connect("/ws/lobby") as ws:
            await opened.wait()
            assert registry.get_sample_value(D + "_count", UPGRADE) == 1
            assert registry.get_sample_value(semconv.ACTIVE, {semconv.METHOD: "GET"}) == 0
            handshake = registry.get_sample_value(D + "_sum", UPGRADE)
            await asyncio.sleep(0.2)  # the connection's life, which must not be observed
            release.set()
            await ws.receive()  # the server's close
        await asyncio.sleep(0.05)  # the handler returns after the close
        assert registry.get_sample_value(D + "_count", UPGRADE) == 1
        assert registry.get_sample_value(D + "_sum", UPGRADE) == handshake
        assert handshake is not None and handshake < 0.2
        assert registry.get_sample_value(semconv.ACTIVE, {semconv.METHOD: "GET"}) == 0
        # A plain GET on the route is no upgrade: an ordinary request, timed to its answer.
        async with client.get("/ws/lobby") as resp:
            assert resp.status == 400
        assert registry.get_sample_value(D + "_count", {**UPGRADE, semconv.STATUS: "400"}) == 1
