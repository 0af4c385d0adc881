"""Sketches within their stated error, the /dashboard shape on a known mix, the key, and
the bounded, paginated /raw_logs."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import orjson
import pytest

from exporter.traffic import ClientAddress, Traffic
from exporter.traffic.sketches import HyperLogLog, SpaceSaving

from .conftest import Factory

KEY = "s3cret-dashboard-key-0123456789ab"
DAY1 = 1_764_547_200.0  # 2025-12-01T00:00:00Z
DAY2 = DAY1 + 86_400


@pytest.mark.parametrize("precision", [12, 14])
def test_unique_clients_within_the_stated_error_on_50000_addresses(precision: int) -> None:
    hll = HyperLogLog(precision)
    rng = random.Random(precision)
    addresses = {str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(50_000)}
    while len(addresses) < 50_000:
        addresses.add(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    for address in addresses:
        hll.add(address)
        hll.add(address)  # a repeat changes nothing
    error = abs(hll.estimate() - 50_000) / 50_000
    # Stated: a relative standard error of 1.04/sqrt(m); within two of them 95 % of the time.
    assert error <= 2 * hll.standard_error, (hll.estimate(), error, hll.standard_error)
    assert hll.size_bytes == 2**precision


def test_hyperloglog_small_counts_are_near_exact() -> None:
    hll = HyperLogLog(14)
    for i in range(100):
        hll.add(f"10.0.0.{i}")
    assert hll.estimate() == 100


def test_top_k_is_exact_on_a_skewed_mix() -> None:
    # 20 heavy clients with counts 1000, 950, ..., among 20,000 one-off clients, shuffled.
    rng = random.Random(7)
    heavy = {f"198.51.100.{i}": 1000 - 50 * i for i in range(20)}
    stream = [ip for ip, n in heavy.items() for _ in range(n)] + [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(20_000)]
    rng.shuffle(stream)
    top = SpaceSaving(200)
    for item in stream:
        top.add(item)
    ranked = top.top(10)
    assert [h.item for h in ranked] == list(heavy)[:10]
    for h in ranked:
        # space-saving's guarantee, and the overcount stays below N / capacity
        assert h.count - h.error <= heavy[h.item] <= h.count
        assert h.error <= len(stream) // 200
    assert len(top) == 200


def test_top_k_counts_are_exact_when_heavy_clients_come_first() -> None:
    top = SpaceSaving(50)
    for i, n in enumerate([500, 300, 200]):
        for _ in range(n):
            top.add(f"heavy-{i}")
    # 2,000 one-offs over the 47 other slots lift their floor to about 43, below every
    # heavy count: the heavy ones are never evicted, so their counts are exact.
    for i in range(2_000):
        top.add(f"light-{i}")
    assert [(h.item, h.count, h.error) for h in top.top(3)] == [("heavy-0", 500, 0), ("heavy-1", 300, 0), ("heavy-2", 200, 0)]


class Wall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def known_mix(traffic: Traffic, wall: Wall) -> None:
    wall.now = DAY1 + 3600
    for _ in range(3):
        traffic.record("GET", "/items", 200, 0.010, 0, 7, "10.0.0.1", "/items")
    traffic.record("GET", "/items/{item_id}", 404, 0.002, 0, 20, "10.0.0.2", "/items/0")
    traffic.record("POST", "/orders", 201, 0.030, 7, 11, "10.0.0.1", "/orders")
    wall.now = DAY2 + 60
    traffic.record("GET", "/boom", 503, 0.100, 0, 15, "10.0.0.3", "/boom")
    traffic.record("GET", "", 404, 0.001, 0, 22, "10.0.0.1", "/wp-login.php")


def test_dashboard_matches_the_old_shape_field_for_field() -> None:
    wall = Wall(DAY1)
    traffic = Traffic(api_key=KEY, wall=wall)
    known_mix(traffic, wall)
    assert traffic.dashboard() == {
        "summary": {
            "total_requests": 7,
            "unique_ips": 3,
            "avg_response_time_ms": 23.286,
            "min_response_time_ms": 1.0,
            "max_response_time_ms": 100.0,
            "error_count": 3,
            "error_rate": 42.86,
            "since": "2025-12-01T00:00:00+00:00",
        },
        "method_usage": {"GET": 6, "POST": 1},
        "endpoint_stats": [
            {"endpoint": "/items", "requests": 3, "avg_response_time_ms": 10.0, "errors": 0},
            {"endpoint": "", "requests": 1, "avg_response_time_ms": 1.0, "errors": 1},
            {"endpoint": "/boom", "requests": 1, "avg_response_time_ms": 100.0, "errors": 1},
            {"endpoint": "/items/{item_id}", "requests": 1, "avg_response_time_ms": 2.0, "errors": 1},
            {"endpoint": "/orders", "requests": 1, "avg_response_time_ms": 30.0, "errors": 0},
        ],
        "status_codes": {"200": 3, "201": 1, "404": 2, "503": 1},
        "top_ips": [
            {"ip": "10.0.0.1", "requests": 5, "max_overcount": 0},
            {"ip": "10.0.0.2", "requests": 1, "max_overcount": 0},
            {"ip": "10.0.0.3", "requests": 1, "max_overcount": 0},
        ],
        "time_series": [
            {"date": "2025-12-01", "requests": 5, "errors": 1, "avg_response_time_ms": 12.4, "unique_ips": 2},
            {"date": "2025-12-02", "requests": 2, "errors": 2, "avg_response_time_ms": 50.5, "unique_ips": 2},
        ],
    }


@pytest.mark.parametrize(
    ("mode", "salt", "expected"),
    [
        (ClientAddress.TRUNCATE, b"", {"10.0.0.0"}),
        (ClientAddress.HASH, b"0123456789abcdef", None),
    ],
)
def test_client_addresses_truncated_or_hashed(mode: ClientAddress, salt: bytes, expected: set[str] | None) -> None:
    wall = Wall(DAY1)
    traffic = Traffic(api_key=KEY, wall=wall, client_address=mode, salt=salt)
    known_mix(traffic, wall)
    dash = traffic.dashboard()
    ips = {row["ip"] for row in dash["top_ips"]}
    logged = {row["ip"] for row in traffic.raw_logs(1, 100)["items"]}
    if expected is not None:
        assert ips == logged == expected
    else:
        assert len(ips) == 3 and all(len(ip) == 16 and "." not in ip for ip in ips)
        assert logged == ips
        other = Traffic(api_key=KEY, wall=wall, client_address=mode, salt=b"another-salt-0123")
        known_mix(other, wall)
        assert {row["ip"] for row in other.dashboard()["top_ips"]}.isdisjoint(ips)


def test_hashing_without_a_real_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="salt of at least 16 bytes"):
        Traffic(client_address=ClientAddress.HASH, salt=b"short")


def test_raw_logs_are_bounded_and_paginated() -> None:
    wall = Wall(DAY1)
    traffic = Traffic(api_key=KEY, wall=wall, raw_logs=50)
    for i in range(120):
        traffic.record("GET", "/items", 200, 0.001, 0, 1, f"10.0.1.{i % 256}", f"/items?n={i}" + "x" * 1000)
    first = traffic.raw_logs(1, 20)
    assert (first["total"], first["pages"], len(first["items"])) == (50, 3, 20)
    assert first["items"][0]["path"].startswith("/items?n=119") and len(first["items"][0]["path"]) == 256
    last = traffic.raw_logs(3, 20)
    assert [row["path"][:11] for row in last["items"]][-1] == "/items?n=70"
    assert len(last["items"]) == 10
    assert traffic.raw_logs(4, 20)["items"] == []


async def test_dashboard_and_raw_logs_over_http_need_the_key(make_app: Factory) -> None:
    h = await make_app(api_key=KEY)
    for path in ["/items", "/items", "/items/3", "/nope"]:
        await h.request("GET", path, client_ip="192.0.2.1")
    await h.request("GET", "/items", client_ip="192.0.2.2")
    for path in ["/dashboard", "/raw_logs"]:
        for headers in [{}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY[:-1]}]:
            r = await h.request("GET", path, headers=headers)
            assert r.status == 401 and KEY.encode() not in r.body
    r = await h.request("GET", "/dashboard", headers={"X-API-Key": KEY})
    assert r.status == 200
    dash: dict[str, Any] = orjson.loads(r.body)
    assert list(dash) == ["summary", "method_usage", "endpoint_stats", "status_codes", "top_ips", "time_series"]
    assert dash["summary"]["total_requests"] == 5
    assert dash["summary"]["unique_ips"] == 2
    assert dash["method_usage"] == {"GET": 5}
    assert dash["status_codes"] == {"200": 4, "404": 1}
    assert [(e["endpoint"], e["requests"]) for e in dash["endpoint_stats"]] == [("/items", 3), ("", 1), ("/items/{item_id}", 1)]
    assert dash["top_ips"][0] == {"ip": "192.0.2.1", "requests": 4, "max_overcount": 0}
    r = await h.request("GET", "/raw_logs?page=2&page_size=2", headers={"X-API-Key": KEY})
    page = orjson.loads(r.body)
    assert (page["total"], page["page"], page["pages"]) == (5, 2, 3)
    assert [row["path"] for row in page["items"]] == ["/items/3", "/items"]
    for bad in ["page=0", "page=x", "page_size=1001", "page_size=0"]:
        r = await h.request("GET", f"/raw_logs?{bad}", headers={"X-API-Key": KEY})
        assert r.status == 400, bad


async def test_without_a_key_there_is_no_dashboard(make_app: Factory) -> None:
    h = await make_app()
    r = await h.request("GET", "/dashboard", headers={"X-API-Key": ""})
    assert r.status == 404  # the app's own answer: the middleware serves nothing there


def test_a_full_queue_drops_and_counts() -> None:
    traffic = Traffic(queue_size=10)
    for _ in range(15):
        traffic.record("GET", "/items", 200, 0.001, 0, 1, "10.0.0.1", "/items")
    assert traffic.dropped == 5
    assert traffic.dashboard()["summary"]["total_requests"] == 10


def test_metrics_only_keeps_no_client_data() -> None:
    # analytics=False (what the exporter's own API uses): the histograms, nothing per client.
    traffic = Traffic(analytics=False, wall=lambda: DAY1)
    for i in range(50):
        traffic.record("GET", "/items", 200 if i % 5 else 503, 0.01, 0, 10, f"10.0.0.{i}", f"/items?i={i}")
    traffic.flush()
    dashboard = traffic.dashboard()
    assert dashboard["summary"]["total_requests"] == 0 and dashboard["top_ips"] == [] and dashboard["time_series"] == []
    assert traffic.raw_logs(1, 100)["items"] == [] and traffic.tracked_clients == 0
    counts = {
        tuple(s.labels.values()): s.value
        for m in traffic.collect()
        if m.name == "http_server_request_duration_seconds"
        for s in m.samples
        if s.name.endswith("_count")
    }
    assert counts == {("GET", "/items", "200"): 40, ("GET", "/items", "503"): 10}
    with pytest.raises(ValueError, match="analytics"):
        Traffic(analytics=False, api_key=KEY)
