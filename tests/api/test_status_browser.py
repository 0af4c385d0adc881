"""The status page in a real browser (issue 16): headless Chromium over the DevTools
Protocol loads /status from an exporter of the shipped registry on the simulator, and
the test fails on a missing provider, any console error, and any request that leaves
loopback. Hostile incident text must stay text. A phone-width page must not scroll
sideways.

With SCREENSHOTS=<dir> set, the phone and desktop screenshots are written there (the
README's come from `SCREENSHOTS=docs/img pytest tests/api/test_status_browser.py`)."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.app import Exporter, build_app
from exporter.selection import Choice
from exporter.simulator import Simulator
from exporter.web.api import ApiOptions, ApiSettings
from exporter.web.api.status_page import IncidentBrief
from exporter.web.server import WebOptions, serve
from tests.chromium import Page, chromium_page
from tests.harness import simulated_loader, start_simulated

DISABLED = ("coinpaprika", "messari")  # shown apart, folded, never as monitored rows
HOSTILE_TITLE = "<script>console.error('xss title')</script>binance & okx 5xx"
# Were it markup, the browser would fetch from TEST-NET-2 (or CSP would log a refusal).
HOSTILE_TEXT = 'Rate limited.\n<img src="http://198.51.100.7/x.png" onerror="console.error(1)">\nCause: "quota" <b>spent</b>'
PNG = b"\x89PNG\r\n\x1a\n"


HOSTILE: list[IncidentBrief] = [
    {
        "id": "inc-1",
        "title": HOSTILE_TITLE,
        "status": "open",
        "severity": "critical",
        "started_at": 1_700_000_000.0,
        "resolved_at": None,
        "providers": ["binance", "<okx>"],
        "explanation": HOSTILE_TEXT,
    }
]
# What the README's screenshots show (the incident service's explanations look like this).
SHOWN: list[IncidentBrief] = [
    {
        "id": "inc-2",
        "title": "Kraken: every endpoint answers 503",
        "status": "open",
        "severity": "critical",
        "started_at": time.time() - 600,
        "resolved_at": None,
        "providers": ["kraken"],
        "explanation": "Kraken has answered HTTP 503 Service Unavailable on every endpoint for 10 minutes; its status source "
        "announces no maintenance and no quota is near its limit.\nLikely cause: an outage on Kraken's side.\n"
        "Remediation: nothing to change here; follow status.kraken.com. The breaker probes it again every minute.",
    },
    {
        "id": "inc-3",
        "title": "Bybit: BTC ticker slow and failing",
        "status": "resolved",
        "severity": "warning",
        "started_at": time.time() - 7200,
        "resolved_at": time.time() - 5400,
        "providers": ["bybit"],
        "explanation": "Latency of btc_ticker rose to 4x its baseline, then one probe in three failed with 5xx.",
    },
]


class Incidents:
    """The page's incident source, switched by the test."""

    def __init__(self) -> None:
        self.shown = HOSTILE

    def __call__(self, limit: int) -> Sequence[IncidentBrief]:
        return self.shown[:limit]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def status_url() -> AsyncIterator[tuple[str, Exporter, Incidents]]:
    """The shipped registry on the simulator, every provider probed once: two failing,
    one in maintenance, two disabled."""
    sim, keys = await start_simulated()
    exporter = Exporter(simulated_loader(sim, keys, Choice(disable=DISABLED)), process_metrics=False, backoff_base=0.01)
    incidents = Incidents()
    options = ApiOptions(settings=ApiSettings(), status_incidents=incidents)
    runner, port = await serve(build_app(exporter, WebOptions(api=options), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        await _faults(sim)
        for p in exporter.config.providers:
            for ep in p.endpoints:
                await exporter.run_probe(p.name, ep.name)
        yield f"http://127.0.0.1:{port}/status", exporter, incidents
    finally:
        await runner.cleanup()
        await sim.stop()


async def _faults(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as http:
        for spec in (
            {"provider": "kraken", "status": 503},
            {"provider": "bybit", "endpoint": "btc_ticker", "status": 503},
            {"provider": "okx", "maintenance": "ongoing"},
        ):
            async with http.post(f"{sim.url}/control/faults", json=spec) as resp:
                assert resp.status in (200, 201), await resp.text()


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG), "not a PNG"
    return struct.unpack(">II", data[16:24])


def save(name: str, data: bytes) -> None:
    target = os.environ.get("SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / name).write_bytes(data)


async def rendered(page: Page) -> dict[str, str]:
    return dict(await page.evaluate("Object.fromEntries([...document.querySelectorAll('[data-provider]')].map(e => [e.dataset.provider, e.dataset.status]))"))


async def test_status_page_in_chromium(http: aiohttp.ClientSession, status_url: tuple[str, Exporter, Incidents]) -> None:
    url, exporter, incidents = status_url
    async with chromium_page(http) as page:
        await page.viewport(390, 844, scale=2, mobile=True)
        await page.navigate(url)
        rows = await rendered(page)
        assert sorted(rows) == sorted(p.name for p in exporter.config.providers)  # every enabled one, once
        expected = {name: ps.status().value for name, ps in exporter.state.providers.items()}
        assert rows == {**expected, "okx": "maintenance"}
        assert rows["kraken"] == "offline" and rows["bybit"] == "degraded" and rows["binance"] == "online"
        assert not set(rows) & set(DISABLED)
        assert sorted(await page.evaluate("[...document.querySelectorAll('[data-disabled]')].map(e => e.dataset.disabled)")) == sorted(DISABLED)
        assert await page.evaluate("document.querySelector('[data-maintenance]').dataset.maintenance") == "okx"
        assert await page.evaluate("document.getElementById('overall').textContent") == "Partial outage: 1 provider down, 1 degraded"
        # Incident text from elsewhere is shown as text: no element, no script, no fetch.
        assert await page.evaluate("document.querySelector('[data-incident=\"inc-1\"] h3').textContent") == HOSTILE_TITLE
        assert await page.evaluate("document.querySelectorAll('main script, main img, .explain b').length") == 0
        assert await page.evaluate("document.querySelector('.explain').textContent") == HOSTILE_TEXT
        # Readable on a phone: nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.record.errors == []
        assert page.record.off_loopback() == []
        assert url in page.record.requests

        incidents.shown = SHOWN
        await page.call("Network.setCacheDisabled", cacheDisabled=True)  # the page is cacheable for 15 s
        await page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        await page.navigate(url)
        assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"  # the dark palette
        phone = await page.screenshot()
        assert png_size(phone) == (780, 1688)
        save("status-page-phone.png", phone)

        await page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
        await page.viewport(1280, 1000)
        await page.navigate(url)
        assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
        desktop = await page.screenshot()
        assert png_size(desktop) == (1280, 1000)
        save("status-page.png", desktop)
        assert page.record.errors == [] and page.record.off_loopback() == []


async def test_the_browser_checks_can_fail(http: aiohttp.ClientSession) -> None:
    """The recorder itself: a page that logs an error and fetches from off loopback is caught."""

    async def bad(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><link rel=icon href='data:,'><script>console.error('boom')</script><img src='http://198.51.100.7/x.png'>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", bad)
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        async with chromium_page(http) as page:
            await page.navigate(f"http://127.0.0.1:{port}/", until="Page.domContentEventFired")  # the image never loads
            await page.until(lambda r: bool(r.errors and r.off_loopback()))
            assert any("boom" in e for e in page.record.errors)
            assert page.record.off_loopback() == ["http://198.51.100.7/x.png"]
    finally:
        await runner.cleanup()
