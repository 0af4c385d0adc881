"""The real apps the traffic tests instrument: a FastAPI app and an aiohttp app with the
same five routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry

from exporter.traffic import RateLimitConfig, Traffic, instrument

ROUTES = 5  # per app: /items, /items/{item_id}, /orders (POST), /boom, /slow


def fastapi_app(registry: CollectorRegistry, rate_limit: RateLimitConfig | None = None, **options: Any) -> tuple[FastAPI, Traffic]:
    app = FastAPI()

    @app.get("/items")
    async def items() -> list[int]:
        return [1, 2, 3]

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(404, "no such item")
        return {"id": item_id}

    @app.post("/orders", status_code=201)
    async def orders(body: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        raise HTTPException(503, "down")

    @app.get("/slow")
    async def slow() -> str:
        return "slow"

    traffic = instrument(app, registry=registry, rate_limit=rate_limit, **options)
    return app, traffic


def aiohttp_app(registry: CollectorRegistry, rate_limit: RateLimitConfig | None = None, **options: Any) -> tuple[web.Application, Traffic]:
    async def items(request: web.Request) -> web.Response:
        return web.json_response([1, 2, 3])

    async def item(request: web.Request) -> web.Response:
        if request.match_info["item_id"] == "0":
            raise web.HTTPNotFound(text="no such item")
        return web.json_response({"id": int(request.match_info["item_id"])})

    async def orders(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"ok": True}, status=201)

    async def boom(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable(text="down")

    async def slow(request: web.Request) -> web.Response:
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/items", items, allow_head=False)
    app.router.add_get("/items/{item_id}", item, allow_head=False)
    app.router.add_post("/orders", orders)
    app.router.add_get("/boom", boom, allow_head=False)
    app.router.add_get("/slow", slow, allow_head=False)
    traffic = instrument(app, registry=registry, rate_limit=rate_limit, **options)
    return app, traffic
