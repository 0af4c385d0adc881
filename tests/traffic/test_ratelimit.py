"""The token bucket on both frameworks: a burst beyond the bucket gets 429 with
Retry-After and the IETF RateLimit fields; other clients and other groups pass; the
clock is advanced, never slept."""

from __future__ import annotations

import pytest

from exporter.traffic import Bucket, RateLimitConfig, RateLimiter, semconv

from .conftest import Factory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CONFIG = RateLimitConfig(default=Bucket(rate=0.5, burst=5), groups={"/orders": ("orders", Bucket(rate=0.1, burst=2))})


async def test_a_burst_beyond_the_bucket_gets_429_with_headers(make_app: Factory) -> None:
    clock = Clock()
    h = await make_app(limiter=RateLimiter(CONFIG, clock=clock))
    answers = [await h.request("GET", "/items", client_ip="203.0.113.5") for _ in range(7)]
    assert [r.status for r in answers] == [200] * 5 + [429] * 2
    assert [r.headers["RateLimit"] for r in answers] == [f'"default";r={n};t={t}' for n, t in [(4, 0), (3, 0), (2, 0), (1, 0), (0, 2), (0, 2), (0, 2)]]
    assert {r.headers["RateLimit-Policy"] for r in answers} == {'"default";q=5;w=10'}
    assert "Retry-After" not in answers[4].headers
    assert answers[5].headers["Retry-After"] == "2"  # one token at 0.5/s
    # Another client has its own bucket; another group has its own too.
    assert (await h.request("GET", "/items", client_ip="203.0.113.6")).status == 200
    orders = [await h.request("POST", "/orders", client_ip="203.0.113.5", content=b"{}", headers={"Content-Type": "application/json"}) for _ in range(3)]
    assert [r.status for r in orders] == [201, 201, 429]
    assert orders[2].headers["RateLimit-Policy"] == '"orders";q=2;w=20'
    assert orders[2].headers["Retry-After"] == "10"
    # Two seconds later one token is back, and one only.
    clock.now += 2
    assert [(await h.request("GET", "/items", client_ip="203.0.113.5")).status for _ in range(2)] == [200, 429]
    assert h.sample(semconv.RATE_LIMITED, {"group": "default", semconv.ROUTE: _refused_route(h.framework, "/items")}) == 3
    assert h.sample(semconv.RATE_LIMITED, {"group": "orders", semconv.ROUTE: _refused_route(h.framework, "/orders")}) == 1
    refused = {semconv.METHOD: "GET", semconv.ROUTE: _refused_route(h.framework, "/items"), semconv.STATUS: "429"}
    assert h.sample(semconv.DURATION + "_count", refused) == 3


def _refused_route(framework: str, template: str) -> str:
    # aiohttp has resolved the route before its middleware runs; a refused ASGI request
    # never reached the router, so its route is unknown.
    return template if framework == "aiohttp" else semconv.UNMATCHED_ROUTE


def test_off_by_default_and_bounded() -> None:
    limiter = RateLimiter(RateLimitConfig(default=Bucket(rate=1, burst=1), max_clients=100), clock=Clock())
    for i in range(1000):
        assert limiter.check(f"10.0.{i // 256}.{i % 256}", "/").allowed
    assert len(limiter) == 100


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (1, 0)])
def test_a_bucket_that_cannot_work_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        Bucket(rate=rate, burst=burst)
