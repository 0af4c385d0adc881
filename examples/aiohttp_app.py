"""A small aiohttp API with exporter.traffic: one line (`instrument`).

TRAFFIC_API_KEY=change-me python examples/aiohttp_app.py --port 8000
curl localhost:8000/items/7; curl localhost:8000/metrics
curl -H "X-API-Key: change-me" localhost:8000/dashboard
"""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from exporter.traffic import Bucket, RateLimitConfig, instrument


async def items(request: web.Request) -> web.Response:
    return web.json_response([{"id": 1}, {"id": 2}])


async def item(request: web.Request) -> web.Response:
    item_id = request.match_info["item_id"]
    if not item_id.isdigit():
        raise web.HTTPBadRequest(text="item_id must be a number")
    return web.json_response({"id": int(item_id)})


async def orders(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True}, status=201)


async def boom(request: web.Request) -> web.Response:
    raise web.HTTPServiceUnavailable(text="down for the demo")


def make_app(rate_limit: bool = False) -> web.Application:
    app = web.Application()
    app.router.add_get("/items", items)
    app.router.add_get("/items/{item_id}", item)
    app.router.add_post("/orders", orders)
    app.router.add_get("/boom", boom)
    # The one line: metrics at /metrics, analytics at /dashboard and /raw_logs behind the key.
    instrument(
        app,
        api_key=os.environ.get("TRAFFIC_API_KEY"),
        rate_limit=RateLimitConfig(default=Bucket(rate=20, burst=40)) if rate_limit else None,
    )
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rate-limit", action="store_true", help="token bucket: 40 at once, 20/s per client")
    args = parser.parse_args()
    web.run_app(make_app(args.rate_limit), host=args.host, port=args.port, access_log=None)
