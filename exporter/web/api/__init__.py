"""The JSON API shim of the old "Crypto API Monitor" backends: `/api/*`, `/ws/*`,
`/openapi.json`, `/docs`, access control and the server's own request metrics.

`setup_api` wires it into the web app; `web.server.build_web_app` calls it. It reads the
store and acts through `ExporterControl`, never the composition root."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web
from prometheus_client import CollectorRegistry

from ...feeds.state import FeedStore
from ...incidents.service import IncidentSettings
from ...state import State
from ..control import ExporterControl
from .auth import access_middleware
from .errors import json_errors
from .events import DEFAULT_QUEUE_SIZE, Hub
from .feeds import MARKET_DATA_INTERVAL, MarketDataPublisher
from .history import SAMPLE_INTERVAL, HistoryRecorder, PrometheusHistory
from .incidents import ApiFacts, setup_incidents, status_source
from .instrument import api_metrics, instrument
from .routes import API_KEY, DOCUMENT, ROUTES, Api
from .settings import ApiSettings
from .status_page import IncidentSource, StatusBoard, setup_status

__all__ = ["API_KEY", "DOCUMENT", "ROUTES", "Api", "ApiOptions", "ApiSettings", "IncidentSource", "setup_api"]


@dataclass(frozen=True)
class ApiOptions:
    """What tests (and embedders) may change; `settings=None` reads the environment."""

    settings: ApiSettings | None = None
    status_interval: float = 10.0
    ping_interval: float = 30.0
    history_interval: float = SAMPLE_INTERVAL
    queue_size: int = DEFAULT_QUEUE_SIZE
    # The routes that spend providers' quota (trigger, key tests) answer 403 unless
    # API_TOKENS is set (callers are then known) or this is on (--web.enable-actions).
    enable_actions: bool = False
    # Waits out one period of the WebSocket status_update and ping and of the chart
    # history's sampling; tests pass a timer they advance by hand.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # The WebSocket feeds' store (the composition root passes its own) and how often
    # /ws/market_data publishes.
    feeds: FeedStore | None = None
    market_data_interval: float = MARKET_DATA_INTERVAL
    # The status page's incidents (web/api/status_page.py) when they are not the in-process
    # service's (tests give their own).
    status_incidents: IncidentSource | None = None
    # --web.public-status: as PUBLIC_STATUS=true (/status and /badge/* open to anyone).
    public_status: bool = False
    # The in-process incident service (web/api/incidents.py, docs/incidents.md): an
    # in-memory store unless a file is given (--incidents.db).
    incidents: IncidentSettings = field(default_factory=IncidentSettings)


def setup_api(app: web.Application, control: ExporterControl, store: State, registry: CollectorRegistry, options: ApiOptions | None = None) -> Api:
    """Add the routes, middlewares and background tasks to `app` (before it starts)."""
    options = options or ApiOptions()
    settings = options.settings if options.settings is not None else ApiSettings.from_env(os.environ)
    if options.public_status:
        settings = replace(settings, public_status=True)
    metrics = api_metrics(registry)
    hub = Hub(store, metrics, status_interval=options.status_interval, ping_interval=options.ping_interval, queue_size=options.queue_size, sleep=options.sleep)
    history = HistoryRecorder(store, interval=options.history_interval, sleep=options.sleep)
    prometheus = PrometheusHistory(settings.prometheus_url) if settings.prometheus_url else None
    feeds = options.feeds if options.feeds is not None else FeedStore()
    api = Api(control, store, settings, hub, history, prometheus, actions_allowed=options.enable_actions or settings.auth_enabled, feeds=feeds)
    market = MarketDataPublisher(hub, feeds, store, interval=options.market_data_interval)
    app[API_KEY] = api
    service = setup_incidents(app, ApiFacts(store, control, api.clock), options.incidents, settings.tokens, registry)
    incidents = options.status_incidents or status_source(service)
    setup_status(app, StatusBoard(control, store, prometheus, incidents, public=settings.public_status))  # /status, /badge/*
    # Outermost first: time everything (exporter.traffic's middleware), then access
    # control, then JSON errors.
    app.middlewares.extend([instrument(app, metrics), access_middleware(settings), json_errors])
    for op in ROUTES:
        if op.handler is None:  # web/server.py's
            continue
        if op.head:
            app.router.add_route("HEAD", op.path, op.handler)
        app.router.add_route(op.method, op.path, op.handler)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        unsubscribe = control.subscribe(hub.on_result)
        hub.start()
        history.start()
        market.start()
        yield
        unsubscribe()
        await market.stop()
        await hub.stop()
        await history.stop()

    async def close_websockets(app: web.Application) -> None:
        await hub.stop()  # before aiohttp waits for open handlers

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_websockets)
    return api
