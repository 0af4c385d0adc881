"""The exporter's own requests, measured by exporter.traffic's middleware (issue 15):
OpenTelemetry names on the exporter's /metrics, exact after a known mix, no series from
unknown paths, WebSocket upgrades recorded at the handshake, the old names gone."""

from __future__ import annotations

import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.traffic import semconv

from .conftest import ApiHarness

D = semconv.DURATION


async def requests(api: ApiHarness) -> dict[tuple[str, str, str], float]:
    """(method, route, status) -> requests, from one scrape of the exporter's /metrics."""
    return {
        (labels[semconv.METHOD], labels[semconv.ROUTE], labels[semconv.STATUS]): value
        for (name, labels_set), value in (await api.samples()).items()
        if name == D + "_count"
        for labels in [dict(labels_set)]
    }


async def raw(api: ApiHarness, method: str, path: str) -> int:
    async with api.http.request(method, f"{api.base}{path}") as resp:
        await resp.read()
        return resp.status


async def test_a_known_mix_gives_exact_samples_under_the_otel_names(api: ApiHarness) -> None:
    for _ in range(3):
        await api.get("/api/status")
    await api.get("/api/providers?category=market_data")  # the query string is not part of the route
    await api.get("/api/logs?page=0", 400)
    await api.get("/api/no/such/thing", 404)
    assert await raw(api, "DELETE", "/api/status") == 405
    assert await raw(api, "PROPFIND", "/api/status") == 405  # a method outside semconv's set
    for _ in range(2):
        assert await raw(api, "GET", "/healthz") == 200
    await api.metrics_text()  # one scrape before the one that reads: /metrics is a route too

    text = await api.metrics_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    seen = await requests(api)  # a third scrape: it sees the second one
    assert seen == {
        ("GET", "/api/status", "200"): 3,
        ("GET", "/api/providers", "200"): 1,
        ("GET", "/api/logs", "400"): 1,
        ("GET", "", "404"): 1,  # unmatched: the one empty route, never the raw path
        # aiohttp resolves no route for a method the path does not take: unmatched too.
        ("DELETE", "", "405"): 1,
        ("_OTHER", "", "405"): 1,
        ("GET", "/healthz", "200"): 2,
        ("GET", "/metrics", "200"): 2,
    }
    status = {semconv.METHOD: "GET", semconv.ROUTE: "/api/status", semconv.STATUS: "200"}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples}
    assert samples[(D + "_bucket", frozenset({**status, "le": "+Inf"}.items()))] == 3
    assert samples[(D + "_bucket", frozenset({**status, "le": "10.0"}.items()))] == 3
    assert samples[(D + "_sum", frozenset(status.items()))] > 0
    assert samples[(semconv.REQUEST_BODY + "_count", frozenset(status.items()))] == 3
    assert samples[(semconv.RESPONSE_BODY + "_count", frozenset(status.items()))] == 3
    # The scrape being answered is the one request in flight.
    assert samples[(semconv.ACTIVE, frozenset({(semconv.METHOD, "GET")}))] == 1
    assert samples[(semconv.DROPPED, frozenset())] == 0
    # The old names are gone; the WebSocket families stay.
    assert not [name for name in families if name.startswith(("crypto_api_exporter_request", "crypto_api_exporter_requests"))]
    assert "crypto_api_exporter_websocket_clients" in families
    # Each family once: one middleware on the exporter's registry, registered once.
    assert text.count(f"# TYPE {D} histogram") == 1


async def test_a_thousand_unknown_paths_create_no_series(api: ApiHarness) -> None:
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    for method in methods:  # the one unmatched series of each method, first
        await raw(api, method, "/not/a/route")
    before = await requests(api)
    rng = random.Random(15)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.~"
    for _ in range(1000):
        method = rng.choice(methods)
        depth = rng.randint(1, 4)
        prefix = rng.choice(["", "api/", "ws/", "api/providers/x/", "docs/"])
        path = "/" + prefix + "/".join("".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(depth)) + "/zz"
        status = await raw(api, method, path)
        assert status in (404, 405), (method, path, status)
    after = await requests(api)
    new = set(after) - set(before)
    assert new <= {("GET", "/metrics", "200")}, new  # the scrape of `before`, nothing the paths made
    assert sum(after.values()) - sum(before.values()) == 1000 + 1  # every request counted, plus that scrape
    assert {route for (_, route, status) in after if status in ("404", "405")} == {""}  # no raw path as a label
    assert sum(n for (_, route, _), n in after.items() if route == "") == 7 + 1000


@pytest.mark.parametrize("route", ["/ws/live", "/ws/market_data"])
async def test_a_websocket_is_recorded_at_its_handshake_not_its_close(api: ApiHarness, route: str) -> None:
    upgrade = ("GET", route, "101")
    async with api.http.ws_connect(f"{api.base}{route}"):
        # Connected: the upgrade is one finished request, and not an active one.
        seen = await requests(api)
        assert seen[upgrade] == 1
        samples = await api.samples()
        assert samples[(semconv.ACTIVE, frozenset({(semconv.METHOD, "GET")}))] == 1  # the scrape alone
        handshake = samples[(D + "_sum", frozenset(zip((semconv.METHOD, semconv.ROUTE, semconv.STATUS), upgrade, strict=True)))]
        await api.tick_ping()  # the connection lives on; nothing more is recorded for it
    await api.metrics_text()
    samples = await api.samples()
    assert samples[(D + "_count", frozenset(zip((semconv.METHOD, semconv.ROUTE, semconv.STATUS), upgrade, strict=True)))] == 1
    assert samples[(D + "_sum", frozenset(zip((semconv.METHOD, semconv.ROUTE, semconv.STATUS), upgrade, strict=True)))] == handshake
    assert samples[(semconv.ACTIVE, frozenset({(semconv.METHOD, "GET")}))] == 1
    # A plain GET on the WebSocket route is an ordinary 400, timed as any request.
    assert await raw(api, "GET", route) == 400
    assert (await requests(api))[("GET", route, "400")] == 1
