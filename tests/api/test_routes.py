"""Each /api endpoint against a running exporter fed by the simulator: shapes, filters,
pagination, the two actions, and bad input answered with a 4xx JSON error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.model import Outcome
from exporter.redact import mask

from .conftest import BAD_KEY, GOOD_KEY, ApiHarness, StartApi


async def test_status_counts_providers_by_status(api: ApiHarness) -> None:
    body = await api.get("/api/status")
    n = len(api.exporter.config.providers)
    assert body["total_apis"] == n and body["unknown"] == n and body["system_health"] == "unknown"
    await api.probe_all("binance")
    await api.fault(provider="kraken", status=503)
    await api.probe_all("kraken")
    body = await api.get("/api/status")
    assert (body["online"], body["offline"], body["degraded"], body["unknown"]) == (1, 1, 0, n - 2)
    assert body["avg_response_time_ms"] > 0
    assert body["last_update"].endswith("Z")
    assert set(body) >= {"total_apis", "online", "degraded", "offline", "avg_response_time_ms", "last_update", "system_health"}


async def test_categories(api: ApiHarness) -> None:
    await api.probe_all("binance")
    rows = {r["category"]: r for r in await api.get("/api/categories")}
    assert set(rows) == {"market_data", "exchanges", "explorers", "rpc_nodes", "news", "sentiment", "onchain"}
    ex = rows["exchanges"]
    n = sum(p.category == "exchanges" for p in api.exporter.config.providers)
    assert ex["name"] == "Exchanges" and ex["total_sources"] == n and ex["online_sources"] == 1
    assert ex["online_ratio"] == round(1 / n, 4) and ex["status"] == "online"  # of the probed ones
    assert rows["news"]["status"] == "unknown"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=exchanges", "every exchange"),
        ("category=EXCHANGES&status=online", {"binance"}),
        ("status=offline", {"kraken"}),
        ("search=scan", "every provider named or described with 'scan'"),
        ("category=explorers&search=tron", {"tronscan"}),
        ("status=degraded", set()),
    ],
)
async def test_provider_filters(api: ApiHarness, query: str, expected: set[str] | str) -> None:
    providers = api.exporter.config.providers
    if expected == "every exchange":  # the shipped registry grows: read it, not a copy
        expected = {p.name for p in providers if p.category == "exchanges"}
    elif isinstance(expected, str):
        expected = {p.name for p in providers if "scan" in p.name or "scan" in p.description.lower()}
    await api.probe_all("binance")
    await api.fault(provider="kraken", status=503)
    await api.probe_all("kraken")
    rows = await api.get(f"/api/providers?{query}")
    assert {r["name"] for r in rows} == expected


async def test_provider_row_shape(api: ApiHarness) -> None:
    await api.probe_all("binance")
    row = next(r for r in await api.get("/api/providers?search=binance") if r["id"] == "binance")
    assert row["id"] == "binance" and row["status"] == "online" and row["health_score"] == 100
    assert row["has_key"] is False and row["circuit_state"] == "closed"
    assert row["rate_limit"]["period"] == "weight_1m" and row["rate_limit"]["total"] > 0
    assert {e["name"] for e in row["endpoints"]} == {"ping", "server_time", "btc_ticker", "system_status"}
    assert all(e["status"] == "success" and e["http_code"] == 200 for e in row["endpoints"])
    assert row["maintenance"] == {"active": False, "state": "none", "start": None, "end": None, "detail": "normal"}  # binance's own "msg"


async def test_provider_maintenance_shows_in_the_api(api: ApiHarness) -> None:
    await api.fault(provider="okx", endpoint="system_status", maintenance="ongoing")
    await api.probe_all("okx")
    row = next(r for r in await api.get("/api/providers?search=okx") if r["id"] == "okx")
    maintenance = row["maintenance"]
    assert (maintenance["active"], maintenance["state"], maintenance["detail"]) == (True, "ongoing", "Spot system upgrade")
    assert maintenance["start"] < maintenance["end"]
    no_source = next(r for r in await api.get("/api/providers?search=coingecko") if r["id"] == "coingecko")
    assert no_source["maintenance"] is None


async def test_logs_pagination_and_filters(api: ApiHarness) -> None:
    for _ in range(3):
        await api.probe_all("binance")  # 12 probes (its status source included)
    await api.fault(provider="okx", endpoint="btc_ticker", status=503)
    await api.probe("okx", "btc_ticker")
    body = await api.get("/api/logs?per_page=4")
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (13, 1, 4, 4)
    assert body["logs"][0]["provider"] == "okx"  # newest first
    entry = body["logs"][0]
    assert entry["status"] == "server_error" and entry["http_code"] == 503 and entry["retries"] == ["server_error", "server_error"]
    last = await api.get("/api/logs?per_page=4&page=4")
    assert len(last["logs"]) == 1
    beyond = await api.get("/api/logs?per_page=4&page=9")
    assert beyond["logs"] == [] and beyond["total"] == 13
    only = await api.get("/api/logs?provider=binance&outcome=success")
    assert only["total"] == 12 and {e["provider"] for e in only["logs"]} == {"binance"}
    assert (await api.get("/api/logs?status=server_error"))["total"] == 1  # the old backends' name
    assert (await api.get("/api/logs?provider=binance&endpoint=ping"))["total"] == 3


async def test_failures_report(api: ApiHarness) -> None:
    await api.fault(provider="okx", status=503)
    await api.fault(provider="kraken", garbage=True)
    await api.probe_all("okx")
    await api.probe("kraken", "btc_ticker")
    await api.probe_all("binance")
    body = await api.get("/api/failures")
    # okx's status source fails too: its own failure, listed like any probe's.
    assert body["total"] == 4
    assert body["error_type_distribution"] == {"server_error": 3, "bad_payload": 1}
    assert body["top_failing_providers"][0] == {"provider": "okx", "failure_count": 3}
    assert body["recent_failures"][0]["provider"] == "kraken" and body["recent_failures"][0]["retry_attempted"] is False
    hints = {h["error_type"]: h for h in body["remediation_suggestions"]}
    assert set(hints) == {"server_error", "bad_payload"} and hints["server_error"]["count"] == 3 and hints["server_error"]["suggestion"]
    assert len((await api.get("/api/failures?limit=1"))["recent_failures"]) == 1
    assert (await api.get("/api/failures?provider=kraken"))["total"] == 1


async def test_rate_limits(api: ApiHarness) -> None:
    await api.fault(provider="binance", quota_remaining=100)
    await api.probe("binance", "ping")
    await api.probe("etherscan", "gas_oracle")
    rows = {(r["provider"], r["scope"]): r for r in await api.get("/api/rate-limits")}
    weight = rows[("binance", "weight_1m")]
    assert weight["status"] in ("critical", "exhausted") and weight["percentage"] >= 95
    assert weight["current_usage"] == weight["limit_value"] - weight["remaining"]
    budget = rows[("etherscan", "budget")]
    assert budget["limit_value"] == 5000 and budget["status"] == "normal"
    assert [r["provider"] for r in await api.get("/api/rate-limits?provider=etherscan")] == ["etherscan"]


async def test_config_keys_are_masked(api: ApiHarness) -> None:
    await api.fault(provider="etherscan", invalid_keys=[BAD_KEY])
    await api.probe("etherscan", "gas_oracle")  # key 1 is rejected, key 2 takes over
    text = json.dumps(await api.get("/api/config/keys"))
    assert GOOD_KEY not in text and BAD_KEY not in text
    rows = {r["provider"]: r for r in json.loads(text)}
    assert "binance" not in rows  # no auth, nothing to show
    keys = {k["env"]: k for k in rows["etherscan"]["keys"]}
    assert keys["ETHERSCAN_API_KEY_1"] == {"env": "ETHERSCAN_API_KEY_1", "set": True, "valid": False, "masked": mask(BAD_KEY)}
    assert keys["ETHERSCAN_API_KEY_2"]["valid"] is True and keys["ETHERSCAN_API_KEY_2"]["masked"].startswith("***")
    assert rows["etherscan"]["status"] == "active" and rows["etherscan"]["key_masked"] == keys["ETHERSCAN_API_KEY_2"]["masked"]


async def test_keys_test_probes_each_key(api: ApiHarness) -> None:
    await api.fault(provider="etherscan", invalid_keys=[BAD_KEY])
    body = await api.post("/api/config/keys/test", json={"provider": "etherscan"})
    assert body["provider"] == "etherscan" and body["endpoint"] == "gas_oracle"
    results = {r["env"]: r for r in body["results"]}
    assert results["ETHERSCAN_API_KEY_1"]["valid"] is False and results["ETHERSCAN_API_KEY_1"]["outcome"] == "auth_error"
    assert results["ETHERSCAN_API_KEY_2"]["valid"] is True and results["ETHERSCAN_API_KEY_2"]["outcome"] == "success"
    assert BAD_KEY not in json.dumps(body) and GOOD_KEY not in json.dumps(body)
    # A diagnostic: nothing recorded in the probe history or the metrics.
    assert len(api.exporter.state.history) == 0
    one = await api.post("/api/config/keys/test", json={"provider": "coinmarketcap", "endpoint": "btc_quote"})
    assert one["endpoint"] == "btc_quote" and all(r["valid"] for r in one["results"])


async def test_schedule_and_trigger(api: ApiHarness) -> None:
    rows = {r["provider"]: r for r in await api.get("/api/schedule")}
    assert rows["binance"]["status"] == "unscheduled" and rows["binance"]["schedule"] == "60s"
    assert rows["binance"]["runs"] == {"on_time": 0, "late": 0, "missed": 0} and rows["binance"]["on_time_percentage"] == 100.0
    # Scheduling off: a trigger has nothing to run.
    body = await api.post("/api/schedule/trigger", 409, json={"provider": "binance"})
    assert "scheduler" in body["detail"]
    api.exporter.scheduler.apply(api.exporter.config)  # the jobs, without starting them
    rows = {r["provider"]: r for r in await api.get("/api/schedule")}
    assert rows["binance"]["status"] == "active" and all(e["scheduled"] for e in rows["binance"]["endpoints"])
    body = await api.post("/api/schedule/trigger", json={"provider": "binance"})
    assert body == {
        "status": "triggered",
        "provider": "binance",
        "endpoint": None,
        "jobs": ["binance/ping", "binance/server_time", "binance/btc_ticker", "binance/system_status"],
    }
    body = await api.post("/api/schedule/trigger?provider=kraken")  # the old backends' query parameter
    assert body["jobs"] == ["kraken/system_status", "kraken/btc_ticker"]
    body = await api.post("/api/schedule/trigger", json={"provider": "okx", "endpoint": "btc_ticker"})
    assert body["jobs"] == ["okx/btc_ticker"]
    body = await api.post("/api/schedule/trigger", json={"endpoint": "btc_ticker"})
    assert set(body["jobs"]) == {f"{p.name}/btc_ticker" for p in api.exporter.config.providers if any(ep.name == "btc_ticker" for ep in p.endpoints)}
    body = await api.post("/api/schedule/trigger")
    assert len(body["jobs"]) == sum(len(p.endpoints) for p in api.exporter.config.providers)


async def test_freshness(api: ApiHarness) -> None:
    await api.probe_all("binance")
    await api.fault(provider="alternative_me", stale_seconds=10 * 86400)
    await api.probe("alternative_me", "fear_greed")
    rows = {(r["provider"], r["endpoint"]): r for r in await api.get("/api/freshness")}
    assert rows[("binance", "ping")]["status"] == "fresh" and rows[("binance", "ping")]["freshness_rule"] is False
    assert rows[("binance", "ping")]["max_age_seconds"] == 120.0
    fg = rows[("alternative_me", "fear_greed")]
    assert fg["freshness_rule"] is True and fg["status"] == "stale" and fg["staleness_minutes"] > 60
    assert rows[("okx", "btc_ticker")]["status"] == "unknown"
    assert {r["provider"] for r in await api.get("/api/freshness?provider=okx")} == {"okx"}


async def test_charts_from_memory_history(api: ApiHarness) -> None:
    # The baseline sample was taken at start; each tick takes one more.
    await api.probe_all("binance")
    await api.tick_history()
    await api.fault(provider="binance", status=503)
    await api.probe("binance", "ping")
    await api.tick_history()
    body = await api.get("/api/charts/health-history?hours=1")
    assert body["source"] == "memory" and body["warning"] is None
    assert len(body["timestamps"]) == 3 and all(len(body[k]) == 3 for k in ("success_rate", "online", "degraded", "offline", "unknown"))
    assert body["success_rate"] == [None, 100.0, 0.0]  # none before the first sample; 3 of 3, then 0 of 1
    assert (body["online"], body["degraded"]) == ([0, 1, 0], [0, 0, 1])
    one = await api.get("/api/charts/health-history?provider=binance")
    assert one["online"] == [0, 1, 0] and one["unknown"] == [1, 0, 0] and one["provider"] == "binance"
    comp = await api.get("/api/charts/compliance?hours=2")
    assert comp["source"] == "memory" and comp["compliance_percentage"] == [None, None, None]  # no scheduled runs: the scheduler is off
    assert (comp["on_time"], comp["late"], comp["missed"]) == ([0, 0, 0], [0, 0, 0], [0, 0, 0])


@pytest.fixture
async def fake_prometheus() -> AsyncIterator[tuple[str, list[str]]]:
    queries: list[str] = []

    async def query_range(request: web.Request) -> web.Response:
        q = request.query["query"]
        queries.append(q)
        start, step = float(request.query["start"]), float(request.query["step"])
        if "schedule_runs" in q:
            result = [{"metric": {"result": r}, "values": [[start, str(v)], [start + step, str(v)]]} for r, v in (("on_time", 9), ("late", 1))]
        elif "provider_status" in q:
            result = [{"metric": {"status": "online"}, "values": [[start, "20"], [start + step, "21"]]}]
        else:
            result = [{"metric": {}, "values": [[start, "99.5"], [start + step, "NaN"]]}]
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": result}})

    app = web.Application()
    app.router.add_get("/api/v1/query_range", query_range)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", queries
    await runner.cleanup()


async def test_charts_from_prometheus(start_api: StartApi, fake_prometheus: tuple[str, list[str]]) -> None:
    url, queries = fake_prometheus
    api = await start_api(env={"PROMETHEUS_URL": url})
    body = await api.get("/api/charts/health-history?hours=2&provider=binance")
    assert body["source"] == "prometheus" and body["success_rate"][:2] == [99.5, None] and body["online"][:2] == [20, 21]
    assert len(body["timestamps"]) == len(body["success_rate"]) == 121  # 2 h at 60 s steps
    assert any('provider="binance"' in q for q in queries)
    comp = await api.get("/api/charts/compliance")
    assert comp["source"] == "prometheus" and comp["compliance_percentage"][:2] == [90.0, 90.0] and comp["late"][0] == 1


async def test_charts_fall_back_when_prometheus_is_down(start_api: StartApi) -> None:
    api = await start_api(env={"PROMETHEUS_URL": "http://127.0.0.1:9"})
    body = await api.get("/api/charts/health-history")
    assert body["source"] == "memory" and "Prometheus" in body["warning"]


@pytest.mark.parametrize(
    ("method", "path", "kw", "status", "field"),
    [
        ("GET", "/api/logs?page=0", {}, 400, "page"),
        ("GET", "/api/logs?page=abc", {}, 400, "page"),
        ("GET", "/api/logs?per_page=1000000", {}, 400, "per_page"),
        ("GET", "/api/logs?per_page=-1", {}, 400, "per_page"),
        ("GET", "/api/logs?provider=nope", {}, 404, "provider"),
        ("GET", "/api/logs?outcome=fine", {}, 400, "outcome"),
        ("GET", "/api/providers?category=defi", {}, 400, "category"),
        ("GET", "/api/providers?status=sideways", {}, 400, "status"),
        ("GET", "/api/providers?search=" + "x" * 300, {}, 400, "search"),
        ("GET", "/api/failures?limit=0", {}, 400, "limit"),
        ("GET", "/api/freshness?provider=nope", {}, 404, "provider"),
        ("GET", "/api/rate-limits?provider=nope", {}, 404, "provider"),
        ("GET", "/api/charts/health-history?hours=1000", {}, 400, "hours"),
        ("GET", "/api/charts/compliance?provider=nope", {}, 404, "provider"),
        ("POST", "/api/config/keys/test", {"data": b"{not json"}, 400, "body"),
        ("POST", "/api/config/keys/test", {"data": b""}, 400, "body"),
        ("POST", "/api/config/keys/test", {"json": []}, 400, "body"),
        ("POST", "/api/config/keys/test", {"json": {}}, 400, "provider"),
        ("POST", "/api/config/keys/test", {"json": {"provider": 5}}, 400, "provider"),
        ("POST", "/api/config/keys/test", {"json": {"provider": "nope"}}, 404, "provider"),
        ("POST", "/api/config/keys/test", {"json": {"provider": "binance"}}, 422, "provider"),
        ("POST", "/api/config/keys/test", {"json": {"provider": "etherscan", "endpoint": "nope"}}, 404, "endpoint"),
        ("POST", "/api/config/keys/test", {"json": {"provider": "etherscan", "extra": 1}}, 400, "extra"),
        ("POST", "/api/config/keys/test", {"data": b"x" * 20000}, 413, "body"),
        ("POST", "/api/schedule/trigger", {"data": b"[1, 2"}, 400, "body"),
        ("POST", "/api/schedule/trigger", {"json": {"provider": "nope"}}, 404, "provider"),
        ("POST", "/api/schedule/trigger", {"json": {"endpoint": "nope"}}, 404, "endpoint"),
        ("POST", "/api/schedule/trigger", {"json": {"provider": ["binance"]}}, 400, "provider"),
        ("POST", "/api/schedule/trigger", {"json": {"provider": "binance", "endpoint": "nope"}}, 404, "endpoint"),
        ("GET", "/api/nope", {}, 404, None),
        ("DELETE", "/api/status", {}, 405, None),
        ("GET", "/ws/live", {}, 400, None),  # a plain GET on a WebSocket route
        (
            "GET",
            "/ws?types=bogus",
            {"headers": {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}},
            400,
            "types",
        ),
    ],
)
async def test_bad_input_is_a_4xx_json_error(api: ApiHarness, method: str, path: str, kw: dict[str, object], status: int, field: str | None) -> None:
    async with api.http.request(method, f"{api.base}{path}", **kw) as resp:  # type: ignore[arg-type]
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["error"] and body["detail"] and body["field"] == field


def test_outcomes_all_have_hints() -> None:
    from exporter.web.api.remediation import HINTS

    assert set(HINTS) == set(Outcome) - {Outcome.SUCCESS}


async def test_chunked_body_over_the_limit_is_413(api: ApiHarness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 4000
        yield b'{"provider": "etherscan"}'

    async with api.http.post(f"{api.base}/api/config/keys/test", data=chunks()) as resp:
        assert resp.status == 413 and (await resp.json())["field"] == "body"
