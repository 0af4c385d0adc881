"""The middleware on a real FastAPI app and a real aiohttp app: exact samples after a known
mix of requests, and random paths and methods that cannot create series."""

from __future__ import annotations

import random

import httpx
from prometheus_client import CollectorRegistry

from exporter.traffic import semconv

from .apps import ROUTES, fastapi_app
from .conftest import Factory

D = semconv.DURATION
# Random paths sent per app: a route label taken from the raw path would show as over
# a thousand series, far above ROUTES (10,000 proved no more: about 6 s per app idle,
# 20 to 50 s on a loaded CI machine).
RANDOM_REQUESTS = 2_000


def series(registry: CollectorRegistry) -> set[tuple[str, str, str]]:
    return {
        (s.labels[semconv.METHOD], s.labels[semconv.ROUTE], s.labels[semconv.STATUS])
        for metric in registry.collect()
        if metric.name == D
        for s in metric.samples
        if s.name == D + "_count"
    }


async def test_known_mix_gives_exact_samples(make_app: Factory) -> None:
    h = await make_app()
    sizes: dict[tuple[str, str, str], int] = {}

    async def go(method: str, path: str, route: str, status: int, times: int = 1, **kw: object) -> None:
        for _ in range(times):
            r = await h.request(method, path, **kw)
            assert r.status == status, (method, path, r.status)
            key = (semconv.method_label(method), route, str(status))
            sizes[key] = sizes.get(key, 0) + len(r.body)

    await go("GET", "/items", "/items", 200, 3)
    await go("GET", "/items/7", "/items/{item_id}", 200, 2)
    await go("GET", "/items/0", "/items/{item_id}", 404)
    body = b'{"a":1}'
    await go("POST", "/orders", "/orders", 201, 2, content=body, headers={"Content-Type": "application/json"})
    await go("GET", "/boom", "/boom", 503)
    await go("GET", "/no/such/path", "", 404, 2)
    # A method outside semconv's set (WebDAV's, which aiohttp's parser accepts, unlike an
    # unknown token it answers 400 before any app code): `_OTHER`. FastAPI's router
    # matched /items partially (405); aiohttp's resolves no route for it.
    await go("PROPFIND", "/items", "/items" if h.framework == "fastapi" else "", 405)

    counts = {
        ("GET", "/items", "200"): 3,
        ("GET", "/items/{item_id}", "200"): 2,
        ("GET", "/items/{item_id}", "404"): 1,
        ("POST", "/orders", "201"): 2,
        ("GET", "/boom", "503"): 1,
        ("GET", "", "404"): 2,
        ("_OTHER", "/items" if h.framework == "fastapi" else "", "405"): 1,
    }
    assert series(h.registry) == set(counts)
    for (method, route, status), n in counts.items():
        labels = {semconv.METHOD: method, semconv.ROUTE: route, semconv.STATUS: status}
        assert h.sample(D + "_count", labels) == n
        assert h.sample(D + "_bucket", {**labels, "le": "+Inf"}) == n
        assert h.sample(D + "_bucket", {**labels, "le": "10.0"}) == n  # a loopback request takes far less than 10 s
        assert h.sample(D + "_sum", labels) is not None and h.sample(D + "_sum", labels) > 0  # type: ignore[operator]
        assert h.sample(semconv.RESPONSE_BODY + "_sum", labels) == sizes[(method, route, status)]
        assert h.sample(semconv.REQUEST_BODY + "_count", labels) == n
    orders = {semconv.METHOD: "POST", semconv.ROUTE: "/orders", semconv.STATUS: "201"}
    assert h.sample(semconv.REQUEST_BODY + "_sum", orders) == 2 * len(body)
    assert h.sample(semconv.REQUEST_BODY + "_bucket", {**orders, "le": "100.0"}) == 2
    assert h.sample(semconv.ACTIVE, {semconv.METHOD: "GET"}) == 0
    assert h.sample(semconv.DROPPED) == 0


async def test_random_paths_create_no_more_series_than_routes(make_app: Factory) -> None:
    h = await make_app()
    rng = random.Random(15)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.~%"
    for i in range(RANDOM_REQUESTS):
        segments = ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 4))]
        # One in three under a real template with a random id (FastAPI answers 422 to a
        # non-integer, aiohttp 500 to its int() in the handler is avoided: ids are digits).
        path = "/" + "/".join(segments) if i % 3 else f"/items/{rng.randint(1, 10**9)}"
        r = await h.request("GET", path)
        assert r.status in (200, 404), (path, r.status)
    found = series(h.registry)
    assert len(found) <= ROUTES, found
    assert found == {("GET", "", "404"), ("GET", "/items/{item_id}", "200")}
    assert sum(h.sample(D + "_count", dict(zip(semconv.LABELS, s, strict=True))) or 0 for s in found) == RANDOM_REQUESTS


async def test_methods_outside_the_standard_set_collapse(make_app: Factory) -> None:
    h = await make_app()
    for method in ["PROPFIND", "MKCOL", "PURGE", "LOCK", "GET"]:
        await h.request(method, "/no/such/path")
    assert {m for m, _, _ in series(h.registry)} == {"GET", "_OTHER"}


async def test_asgi_client_address_is_the_peer_without_a_proxy_header() -> None:
    app, traffic = fastapi_app(CollectorRegistry(), api_key="k" * 32)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/items", headers={"X-Real-IP": "203.0.113.9"})  # ignored: no client_header set
    assert [row["ip"] for row in traffic.dashboard()["top_ips"]] == ["192.0.2.7"]
