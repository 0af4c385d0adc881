"""Traffic analytics for the user's own API: one line to add to an app.

    from exporter.traffic import instrument
    instrument(app, api_key=os.environ["DASHBOARD_KEY"])   # FastAPI, Starlette or aiohttp

Metrics under OpenTelemetry's HTTP server names (`http_server_request_duration_seconds`
...) with route templates as labels; unique and top clients, daily series and raw logs
in memory behind `X-API-Key` at `/dashboard` and `/raw_logs`. See docs/traffic.md.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from .ratelimit import Bucket, RateLimitConfig, RateLimiter
from .store import ClientAddress, Traffic, TrafficCollector

__all__ = ["Bucket", "ClientAddress", "RateLimitConfig", "RateLimiter", "Traffic", "instrument"]


def instrument(
    app: Any,
    *,
    registry: CollectorRegistry = REGISTRY,
    metrics_path: str | None = "/metrics",
    rate_limit: RateLimitConfig | None = None,
    limiter: RateLimiter | None = None,
    **options: Any,
) -> Traffic:
    """Add the middleware to `app` (aiohttp `web.Application`, or anything with Starlette's
    `add_middleware`) and register its metrics in `registry`. `options` go to `Traffic`.
    Returns the `Traffic` so the caller can read it."""
    from aiohttp import web

    if not isinstance(app, web.Application) and not hasattr(app, "add_middleware"):
        raise TypeError(
            f"instrument() takes an aiohttp web.Application or a Starlette/FastAPI app, got {type(app).__name__}; wrap other ASGI apps in TrafficMiddleware"
        )
    traffic = Traffic(**options)
    if limiter is None and rate_limit is not None:
        limiter = RateLimiter(rate_limit)
    if isinstance(app, web.Application):
        from .aiohttp_mw import traffic_middleware, upgrade_hook

        app.middlewares.append(traffic_middleware(traffic, limiter, registry, metrics_path))
        app.on_response_prepare.append(upgrade_hook(traffic))
    else:
        from .asgi import TrafficMiddleware

        app.add_middleware(TrafficMiddleware, traffic=traffic, limiter=limiter, registry=registry, metrics_path=metrics_path)
    registry.register(TrafficCollector(traffic))
    return traffic
