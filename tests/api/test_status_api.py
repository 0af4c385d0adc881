"""/status, the badges and `/` against a running exporter on the simulator (issue 16):
content types and caching, ETags, unknown names, access with and without
PUBLIC_STATUS, the Prometheus source and its fallback, and the incident source."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.app import build_app
from exporter.cli import _parser
from exporter.config import ConfigError
from exporter.incidents.service import IncidentSettings
from exporter.model import ProbeKind
from exporter.selection import Choice
from exporter.web.api import ApiOptions, ApiSettings
from exporter.web.api.status_page import IncidentBrief
from exporter.web.api.svg import format_uptime
from exporter.web.server import WebOptions, serve
from tests.harness import simulated_exporter
from tests.incident_payloads import notification, provider_alert, resolved

from .conftest import TOKEN, ApiHarness, StartApi

SVG_ROOT = "{http://www.w3.org/2000/svg}svg"
BADGES = ("/badge/binance/health.svg", "/badge/binance/uptime.svg", "/badge/binance/uptime.svg?window=7d", "/badge/binance/latency.svg")


async def fetch(api: ApiHarness, path: str, headers: dict[str, str] | None = None) -> tuple[int, Mapping[str, str], str]:
    async with api.http.get(f"{api.base}{path}", headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.text()  # a copy still case-insensitive


def svg_text(body: str) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == SVG_ROOT
    assert root.attrib["viewBox"] == f"0 0 {root.attrib['width']} 20"
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


async def test_status_page_lists_the_providers(api: ApiHarness) -> None:
    await api.fault(provider="kraken", status=503)
    await api.probe_all("binance")
    await api.probe_all("kraken")
    status, headers, html = await fetch(api, "/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "private, max-age=15"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for p in api.exporter.config.providers:
        assert f'data-provider="{p.name}"' in html
    assert 'data-provider="binance" data-status="online"' in html
    assert 'data-provider="kraken" data-status="offline"' in html
    assert "No incidents recorded." in html
    assert "from this exporter's memory since" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch from elsewhere


async def test_uptime_counts_the_probes(api: ApiHarness) -> None:
    await api.probe_all("binance")  # its status source's probe is not counted
    counted = sum(1 for ep in api.exporter.config.provider("binance").endpoints if ep.kind is not ProbeKind.STATUS)
    await api.probe("binance", "btc_ticker")
    await api.fault(provider="binance", endpoint="btc_ticker", status=503)
    await api.probe("binance", "btc_ticker")
    status, _, body = await fetch(api, "/badge/binance/uptime.svg")
    assert status == 200
    assert svg_text(body)[-1] == format_uptime((counted + 1) / (counted + 2))
    status, _, body = await fetch(api, "/badge/binance/latency.svg")
    assert svg_text(body)[-1].endswith(" ms")
    status, _, body = await fetch(api, "/badge/binance/health.svg")
    assert svg_text(body) == ["binance", "binance", "degraded", "degraded"]


async def test_side_channel_probes_do_not_count(api: ApiHarness) -> None:
    await api.fault(provider="okx", endpoint="system_status", status=503)
    await api.probe("okx", "system_status")  # the status source failing is its own business
    _, _, body = await fetch(api, "/badge/okx/uptime.svg")
    assert svg_text(body)[-1] == "no data"


@pytest.mark.parametrize("path", BADGES)
async def test_badges_are_cacheable_svg(api: ApiHarness, path: str) -> None:
    await api.probe_all("binance")
    status, headers, body = await fetch(api, path)
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert headers["Cache-Control"] == "private, max-age=60"
    assert headers["Content-Security-Policy"] == "default-src 'none'"
    svg_text(body)
    etag = headers["ETag"]
    status, headers, body = await fetch(api, path, {"If-None-Match": f'"other", {etag}'})
    assert (status, body, headers["ETag"]) == (304, "", etag)
    status, _, _ = await fetch(api, path, {"If-None-Match": '"other"'})
    assert status == 200


@pytest.mark.parametrize(
    ("path", "status", "field", "detail"),
    [
        ("/badge/nosuch/health.svg", 404, "provider", "provider: unknown provider 'nosuch'"),
        ("/badge/nosuch/latency.svg", 404, "provider", "provider: unknown provider 'nosuch'"),
        ("/badge/binance/uptime.svg?window=30d", 400, "window", "window: must be one of 24h, 7d, got '30d'"),
    ],
)
async def test_badge_errors_name_what_is_wrong(api: ApiHarness, path: str, status: int, field: str, detail: str) -> None:
    body = await api.get(path, status)
    assert (body["field"], body["detail"]) == (field, detail)


async def test_disabled_provider_has_a_grey_badge(start_api: StartApi) -> None:
    api = await start_api(choice=Choice(disable=("coinmarketcap",)))
    assert "coinmarketcap" in api.exporter.state.disabled
    _, _, body = await fetch(api, "/badge/coinmarketcap/health.svg")
    assert svg_text(body)[-1] == "disabled"
    _, _, body = await fetch(api, "/badge/coinmarketcap/uptime.svg")
    assert svg_text(body)[-1] == "no data"
    _, _, html = await fetch(api, "/status")
    assert 'data-disabled="coinmarketcap"' in html and 'data-provider="coinmarketcap"' not in html
    assert "coinmarketcap: disabled on the command line" in html


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("path", ["/status", *BADGES])
async def test_guarded_like_the_api_by_default(start_api: StartApi, path: str) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN}, use_token=False)
    status, _, _ = await fetch(api, path)
    assert status == 401
    status, headers, _ = await fetch(api, path, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and headers["Cache-Control"].startswith("private")


@pytest.mark.parametrize("path", ["/status", *BADGES])
async def test_public_status_opens_only_the_page_and_badges(start_api: StartApi, path: str) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN, "ALLOWED_IPS": "10.0.0.0/8", "PUBLIC_STATUS": "true"}, use_token=False)
    status, headers, _ = await fetch(api, path)
    assert status == 200 and headers["Cache-Control"].startswith("public, max-age=")
    await api.get("/api/status", 403)  # the API stays behind the allowlist and tokens
    await api.get("/api/providers", 403)


async def test_landing_page_links(start_api: StartApi) -> None:
    api = await start_api()
    _, _, html = await fetch(api, "/")
    assert 'href="/status"' in html and 'href="/metrics"' in html and 'href="/docs"' in html
    assert "Grafana" not in html
    api = await start_api(env={"GRAFANA_URL": "https://grafana.example.com/d/x?a=1&b=2"})
    _, _, html = await fetch(api, "/")
    assert '<a href="https://grafana.example.com/d/x?a=1&amp;b=2">Grafana</a>' in html


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUBLIC_STATUS": "maybe"}, "PUBLIC_STATUS: 'maybe' must be true or false"),
        ({"GRAFANA_URL": "grafana:3000"}, "GRAFANA_URL: 'grafana:3000' must be an http(s) URL like http://grafana:3000"),
        ({"GRAFANA_URL": "https://admin:s3cret-pass@grafana"}, "GRAFANA_URL: must not carry credentials (user:password@); Grafana asks for them itself"),
    ],
)
def test_settings_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        ApiSettings.from_env(env)
    assert e.value.errors == [message]
    assert "s3cret" not in str(e.value)


def test_settings_defaults() -> None:
    s = ApiSettings.from_env({})
    assert (s.public_status, s.grafana_url) == (False, None)
    s = ApiSettings.from_env({"PUBLIC_STATUS": "yes", "GRAFANA_URL": "http://grafana:3000/"})
    assert (s.public_status, s.grafana_url) == (True, "http://grafana:3000")


# ---------------------------------------------------------------- Prometheus


class FakePrometheus:
    """Answers the status page's queries as Prometheus's HTTP API would, and counts them."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.queries: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        expr = request.query["query"]
        self.queries.append(expr)
        if self.fail:
            return web.Response(status=503, text="overloaded")
        if request.path.endswith("/query_range"):
            start, step = float(request.query["start"]), int(request.query["step"])
            values = [[start + i * step, "0.25"] for i in range(48)]
            return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"provider": "binance"}, "values": values}]}})
        value = "0.5" if "duration" in expr else "0.9876" if "[7d]" in expr else "0.99991"
        result: list[dict[str, Any]] = [{"metric": {"provider": "binance"}, "value": [1, value]}, {"metric": {"provider": "kraken"}, "value": [1, "NaN"]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    async def __aenter__(self) -> FakePrometheus:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.handle)
        app.router.add_get("/api/v1/query_range", self.handle)
        self._runner, port = await serve(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    async with FakePrometheus() as fake:
        yield fake


async def test_uptime_from_prometheus(start_api: StartApi, prometheus: FakePrometheus) -> None:
    api = await start_api(env={"PROMETHEUS_URL": prometheus.url})
    _, _, html = await fetch(api, "/status")
    assert "Uptime and latency from Prometheus." in html
    assert len(prometheus.queries) == 4  # one set for all providers
    _, _, day = await fetch(api, "/badge/binance/uptime.svg")
    _, _, week = await fetch(api, "/badge/binance/uptime.svg?window=7d")
    _, _, latency = await fetch(api, "/badge/binance/latency.svg")
    _, _, kraken = await fetch(api, "/badge/kraken/uptime.svg")
    assert [svg_text(b)[-1] for b in (day, week, latency, kraken)] == ["99.99%", "98.76%", "500 ms", "no data"]
    assert len(prometheus.queries) == 4  # reused within the TTL
    assert all("crypto_api_up" in q for q in prometheus.queries)


async def test_prometheus_failure_falls_back_to_memory(start_api: StartApi) -> None:
    async with FakePrometheus(fail=True) as prometheus:
        api = await start_api(env={"PROMETHEUS_URL": prometheus.url})
        await api.probe("binance", "btc_ticker")
        _, _, html = await fetch(api, "/status")
        assert "Prometheus answered HTTP 503; uptime and latency from the exporter&#x27;s own memory" in html
        _, _, body = await fetch(api, "/badge/binance/uptime.svg")
        assert svg_text(body)[-1] == "100%"  # from memory
        assert len(prometheus.queries) == 4  # the failure is remembered too: no query storm


# ---------------------------------------------------------------- incidents


async def test_incidents_from_an_async_source(start_api: StartApi) -> None:
    asked: list[int] = []

    async def source(limit: int) -> Sequence[IncidentBrief]:
        asked.append(limit)
        return [
            {
                "id": "a1",
                "title": "Binance 5xx",
                "status": "open",
                "severity": "critical",
                "started_at": 1.0e9,
                "resolved_at": None,
                "providers": ["binance"],
                "explanation": "Likely cause: <their> outage",
            }
        ]

    api = await start_api(status_incidents=source)
    _, _, html = await fetch(api, "/status")
    assert asked == [20]
    assert 'data-incident="a1"' in html and "Likely cause: &lt;their&gt; outage" in html


async def test_a_failing_incident_source_leaves_the_page_up(start_api: StartApi) -> None:
    def source(limit: int) -> Sequence[IncidentBrief]:
        raise RuntimeError("database is locked")

    api = await start_api(status_incidents=source)
    status, _, html = await fetch(api, "/status")
    assert status == 200
    assert "incidents are unavailable right now" in html and "database is locked" not in html


async def test_head_answers_without_body(api: ApiHarness) -> None:
    async with api.http.head(f"{api.base}/badge/binance/health.svg") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("image/svg+xml")
    async with aiohttp.ClientSession() as http, http.head(f"{api.base}/status") as resp:
        assert resp.status == 200


async def test_the_public_status_flag(http_session: aiohttp.ClientSession) -> None:
    """--web.public-status (ApiOptions.public_status) opens the page as PUBLIC_STATUS does."""
    sim, exporter = await simulated_exporter()
    options = ApiOptions(settings=ApiSettings(tokens=(TOKEN,)), public_status=True)
    runner, port = await serve(build_app(exporter, WebOptions(api=options), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        for path, status in (("/status", 200), ("/badge/binance/health.svg", 200), ("/api/status", 401)):
            async with http_session.get(f"http://127.0.0.1:{port}{path}") as resp:
                assert resp.status == status, path
    finally:
        await runner.cleanup()
        await sim.stop()
    assert _parser().parse_args(["run", "--web.public-status"]).public_status
    assert not _parser().parse_args(["run"]).public_status


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_the_page_shows_the_incident_services_incidents(start_api: StartApi) -> None:
    """Without a source of its own, the page reads the in-process incident service: an open
    incident stays listed above newer resolved ones, with its explanation."""
    api = await start_api(incidents=IncidentSettings(settle_seconds=0))
    await api.post("/api/incidents/webhook", json=notification([provider_alert("ProviderDown", "binance")]))
    for name in ("okx", "kraken"):  # two newer incidents, both resolved
        down = provider_alert("ProviderDown", name)
        await api.post("/api/incidents/webhook", json=notification([down]))
        await api.post("/api/incidents/webhook", json=notification([resolved(down, time.time())]))
    for _ in range(200):  # explanations run as tasks of the service
        if all(i["summary"] is not None for i in (await api.get("/api/incidents"))["incidents"]):
            break
        await asyncio.sleep(0.02)
    _, _, html = await fetch(api, "/status")
    assert 'data-incident="1"' in html and 'data-incident="2"' in html and 'data-incident="3"' in html
    assert html.index('data-incident="1"') < html.index('data-incident="3"')  # open first
    assert "Not explained yet." not in html
