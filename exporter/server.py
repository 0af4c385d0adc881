"""The exporter's HTTP server: /metrics, /healthz, /-/reload and a landing page."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .api import ApiOptions, setup_api
from .app import Exporter

log = structlog.get_logger()
EXPORTER_KEY = web.AppKey("exporter", Exporter)

_LANDING = """<!doctype html><html><head><title>Crypto API Exporter</title></head><body>
<h1>Crypto API Exporter</h1>
<p>{providers} providers, {endpoints} endpoints, probed on the exporter's own schedule.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>"""


async def metrics(request: web.Request) -> web.StreamResponse:
    exporter = request.app[EXPORTER_KEY]
    resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
    await resp.prepare(request)
    await exporter.exposition.stream(resp.write)
    await resp.write_eof()
    return resp


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def reload(request: web.Request) -> web.Response:
    errors = request.app[EXPORTER_KEY].reload()
    if errors:
        # The file cannot be processed; the last good config keeps running.
        return web.json_response({"status": "error", "errors": errors}, status=422)
    return web.json_response({"status": "ok"})


async def landing(request: web.Request) -> web.Response:
    config = request.app[EXPORTER_KEY].config
    html = _LANDING.format(providers=len(config.providers), endpoints=sum(len(p.endpoints) for p in config.providers))
    return web.Response(text=html, content_type="text/html")


def build_app(exporter: Exporter, *, handle_sighup: bool = True, schedule: bool = True, api: ApiOptions | None = None) -> web.Application:
    app = web.Application()
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/-/reload", reload)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await exporter.start(schedule=schedule)
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(signal.SIGHUP, exporter.reload)
        yield
        if handle_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        await exporter.stop()

    app.cleanup_ctx.append(lifecycle)
    setup_api(app, exporter, api)  # /api/*, /ws/*, /openapi.json, /docs; env API_TOKENS, ALLOWED_IPS, ...
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app`; returns the runner (for cleanup) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001 - the only way to learn the port bound for port 0
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, bound


async def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
