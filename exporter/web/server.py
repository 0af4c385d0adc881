"""The exporter's HTTP server: `/metrics` (gzip when asked), `/healthz`, `POST /-/reload`,
a landing page, and the JSON API (web/api/).

It knows the running exporter only through `ExporterControl` and reads the store."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from .. import limits
from ..metrics import Exposition
from ..state import State
from .api import API_KEY, ApiOptions, setup_api
from .api.errors import error_response
from .api.models import Ok, ReloadFailed
from .control import ExporterControl
from .protocol import ExporterSite

# Level 1: the exposition is repetitive text, so the fastest level already shrinks it
# about tenfold; higher levels cost several times the CPU for a few percent (bench/).
GZIP_LEVEL = 1

_LANDING = """<!doctype html><html><head><title>Crypto API Exporter</title></head><body>
<h1>Crypto API Exporter</h1>
<p>{providers} providers, {endpoints} endpoints, probed on the exporter's own schedule; {disabled} more configured but disabled
(see <a href="/api/providers?status=disabled">/api/providers?status=disabled</a>).</p>
<ul><li><a href="/status">/status</a> (status page, uptime, incidents)</li><li><a href="/metrics">/metrics</a></li><li><a href="/api/status">/api/status</a> (JSON API)</li>
<li><a href="/docs">/docs</a> (API reference)</li>{grafana}<li><a href="/healthz">/healthz</a></li></ul>
</body></html>"""


@dataclass(frozen=True)
class WebOptions:
    # POST /-/reload answers 403 unless this is on, as Prometheus's --web.enable-lifecycle
    # (SIGHUP always reloads).
    enable_lifecycle: bool = False
    api: ApiOptions = field(default_factory=ApiOptions)


CONTROL_KEY = web.AppKey("control", ExporterControl)
EXPOSITION_KEY = web.AppKey("exposition", Exposition)
OPTIONS_KEY = web.AppKey("web_options", WebOptions)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (`gzip;q=0` refuses it)."""
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return False
    return False


async def stream_gzip(exposition: Exposition, write: Callable[[bytes], Awaitable[None]], level: int = GZIP_LEVEL) -> None:
    """The exposition gzip-compressed, piece by piece. zlib releases the GIL: compressing
    in a thread keeps the loop (and the timing of probes in flight) free, and uses the
    second core."""
    loop = asyncio.get_running_loop()
    z = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: the gzip container

    async def compress(chunk: bytes) -> None:
        packed = await loop.run_in_executor(None, z.compress, chunk)
        if packed:
            await write(packed)

    await exposition.stream(compress)
    await write(z.flush())


async def metrics(request: web.Request) -> web.StreamResponse:
    exposition = request.app[EXPOSITION_KEY]
    gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    headers = {"Content-Type": CONTENT_TYPE_LATEST, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    if gzip:
        await stream_gzip(exposition, resp.write)
    else:
        await exposition.stream(resp.write)
    await resp.write_eof()
    return resp


# The JSON bodies below are typed with the models that /openapi.json documents for these
# routes (api/routes.py lists them), so mypy holds them to the document.


async def healthz(request: web.Request) -> web.Response:
    ok: Ok = {"status": "ok"}
    return web.json_response(ok)


async def reload(request: web.Request) -> web.Response:
    if not request.app[OPTIONS_KEY].enable_lifecycle:
        return error_response(403, "lifecycle API is not enabled: start with --web.enable-lifecycle, or send SIGHUP")
    errors = request.app[CONTROL_KEY].reload()
    if errors:
        # The file cannot be processed; the last good config keeps running.
        failed: ReloadFailed = {"status": "error", "errors": errors}
        return web.json_response(failed, status=422)
    ok: Ok = {"status": "ok"}
    return web.json_response(ok)


async def landing(request: web.Request) -> web.Response:
    config = request.app[CONTROL_KEY].config
    grafana_url = request.app[API_KEY].settings.grafana_url  # GRAFANA_URL: no link without it
    grafana = f'<li><a href="{escape(grafana_url)}">Grafana</a> (dashboards)</li>' if grafana_url else ""
    html = _LANDING.format(
        providers=len(config.providers), endpoints=sum(len(p.endpoints) for p in config.providers), disabled=len(config.disabled), grafana=grafana
    )
    return web.Response(text=html, content_type="text/html")


def build_web_app(
    control: ExporterControl, store: State, exposition: Exposition, registry: CollectorRegistry, options: WebOptions | None = None
) -> web.Application:
    """The aiohttp app; the caller adds the exporter's own start and stop to it."""
    options = options or WebOptions()
    app = web.Application()
    app[CONTROL_KEY] = control
    app[EXPOSITION_KEY] = exposition
    app[OPTIONS_KEY] = options
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/-/reload", reload)
    setup_api(app, control, store, registry, options.api)  # /api/*, /ws/*, /openapi.json, /docs
    return app


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    head_timeout: float = limits.HTTP_HEAD_SECONDS,
    keepalive_timeout: float = limits.HTTP_KEEPALIVE_SECONDS,
) -> tuple[web.AppRunner, int]:
    """Start serving `app`; returns the runner (for cleanup) and the bound port. Connections
    are `protocol.ExporterRequestHandler`s: bounded request heads, JSON errors, no raw
    request in a log line. Tests pass shorter timeouts."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = ExporterSite(runner, host, port, head_timeout=head_timeout, keepalive_timeout=keepalive_timeout)
    await site.start()
    bound = int(runner.addresses[0][1]) if runner.addresses else port  # the port bound for port 0
    return runner, bound
