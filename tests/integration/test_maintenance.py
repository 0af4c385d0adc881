"""Issue 11 on loopback, with exact samples: status sources announcing maintenance (each
shipped format), a failing status source that leaves its provider alone, and a frozen
price that ends `stale` after its max_unchanged.

One clock drives the simulator's payloads, the prober's wall clock and the exposition,
so windows and timestamps are exact and `max_unchanged` passes without waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exporter.app import Exporter, build_app
from exporter.config import load_config
from exporter.model import MaintenanceState, Outcome
from exporter.simulator import Simulator
from exporter.state import MAINTENANCE_TTL_INTERVALS
from exporter.web.server import WebOptions, serve
from tests.harness import SimHarness, key_env, simulated_loader

from .conftest import BACKOFF

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: whole seconds, so ms and ISO round-trip exactly
INTERVAL = 60.0  # tests/harness.py fast(): every endpoint's interval


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Clocked(SimHarness):
    clock: Clock


@pytest.fixture
async def clocked() -> AsyncIterator[Clocked]:
    clock = Clock(T0)
    keys = key_env(load_config(env={}))
    sim = Simulator(load_config(env=keys), clock=clock)
    await sim.start("127.0.0.1", 0)
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, backoff_base=BACKOFF)
    exporter.exposition.clock = clock
    runner, port = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    assert exporter._ctx is not None  # started by the app's lifecycle
    exporter._ctx.wall = clock  # the prober's clock: max_unchanged is measured on it
    async with aiohttp.ClientSession() as http:
        harness = Clocked(sim, exporter, http, f"http://127.0.0.1:{port}")
        harness.clock = clock
        yield harness
    await runner.cleanup()
    await sim.stop()


# (provider, category, simulator mode, maintenance gauge, window start, window end)
ANNOUNCED = [
    ("binance", "exchanges", "ongoing", 1.0, None, None),  # {"status": 1}: no window in the format
    ("kraken", "exchanges", "ongoing", 1.0, None, None),  # result.status "maintenance"
    ("okx", "exchanges", "ongoing", 1.0, T0 - 300, T0 + 3600),
    ("okx", "exchanges", "scheduled", 0.0, T0 + 3600, T0 + 7200),
    ("okx", "exchanges", "over", 0.0, None, None),  # OKX lists no completed window by default
    ("bybit", "exchanges", "over", 0.0, None, None),  # a "completed" window is history
    ("bybit", "exchanges", "ongoing", 1.0, T0 - 300, T0 + 3600),
    ("coinbase", "exchanges", "ongoing", 1.0, T0 - 300, T0 + 3600),  # Statuspage "in_progress"
    ("coinbase", "exchanges", "scheduled", 0.0, T0 + 3600, T0 + 7200),
]


@pytest.mark.parametrize(("provider", "category", "mode", "gauge", "start", "end"), ANNOUNCED, ids=lambda x: str(x))
async def test_status_sources_announce_maintenance(
    clocked: Clocked, provider: str, category: str, mode: str, gauge: float, start: float | None, end: float | None
) -> None:
    await clocked.fault(provider=provider, endpoint="system_status", maintenance=mode)
    r = await clocked.probe(provider, "system_status")
    assert r.outcome is Outcome.SUCCESS, r.detail
    assert r.maintenance is not None
    assert await clocked.sample("crypto_api_provider_maintenance", provider=provider) == gauge
    assert await clocked.sample("crypto_api_provider_maintenance_start_timestamp_seconds", provider=provider) == start
    assert await clocked.sample("crypto_api_provider_maintenance_end_timestamp_seconds", provider=provider) == end
    labels = {"provider": provider, "category": category, "endpoint": "system_status"}
    assert await clocked.sample("crypto_api_probes_total", **labels, outcome="success") == 1
    # A side channel: no crypto_api_up, no part in the provider's status.
    assert await clocked.sample("crypto_api_up", **labels) is None
    assert await clocked.sample("crypto_api_provider_status", provider=provider, category=category, status="unknown") == 1


async def test_a_scheduled_window_becomes_maintenance_when_it_begins_by_our_clock(clocked: Clocked) -> None:
    await clocked.fault(provider="okx", endpoint="system_status", maintenance="scheduled")
    r = await clocked.probe("okx", "system_status")
    assert r.maintenance is not None and r.maintenance.state is MaintenanceState.SCHEDULED
    assert await clocked.sample("crypto_api_provider_maintenance", provider="okx") == 0
    # The source says "scheduled" until it is polled again; the window has begun by then.
    clocked.clock.advance(3600)
    await clocked.probe("okx", "system_status")
    assert await clocked.sample("crypto_api_provider_maintenance", provider="okx") == 1
    assert await clocked.sample("crypto_api_provider_maintenance_start_timestamp_seconds", provider="okx") == T0 + 3600


async def test_no_status_source_no_maintenance_series(clocked: Clocked) -> None:
    await clocked.probe("coingecko", "ping")
    assert await clocked.sample("crypto_api_provider_maintenance", provider="coingecko") is None


async def test_a_failing_status_source_leaves_the_provider_alone(clocked: Clocked) -> None:
    """Its failure is its own: one attempt, its own outcome counter, and the provider's
    status, health, `up` and breaker as if it did not exist."""
    for endpoint in ("ping", "server_time", "btc_ticker"):
        assert (await clocked.probe("binance", endpoint)).outcome is Outcome.SUCCESS
    await clocked.fault(provider="binance", endpoint="system_status", status=503)
    for _ in range(6):  # more than the breaker's failure_threshold (5)
        r = await clocked.probe("binance", "system_status")
        assert (r.outcome, r.attempts, r.status_code) == (Outcome.SERVER_ERROR, 1, 503)
    labels = {"provider": "binance", "category": "exchanges", "endpoint": "system_status"}
    assert await clocked.sample("crypto_api_probes_total", **labels, outcome="server_error") == 6
    assert await clocked.sample("crypto_api_up", **labels) is None
    assert await clocked.sample("crypto_api_provider_status", provider="binance", category="exchanges", status="online") == 1
    assert await clocked.sample("crypto_api_circuit_breaker_state", provider="binance", state="closed") == 1
    assert await clocked.sample("crypto_api_provider_maintenance", provider="binance") is None  # never answered: unknown
    assert (await clocked.probe("binance", "ping")).outcome is Outcome.SUCCESS  # not skipped by a breaker
    # Garbage is a bad payload of the source, nothing more.
    await clocked.fault(provider="binance", endpoint="system_status", garbage=True)
    assert (await clocked.probe("binance", "system_status")).outcome is Outcome.BAD_PAYLOAD
    assert await clocked.sample("crypto_api_provider_status", provider="binance", category="exchanges", status="online") == 1


async def test_a_source_that_stops_answering_stops_muting_after_three_intervals(clocked: Clocked) -> None:
    await clocked.fault(provider="kraken", endpoint="system_status", maintenance="ongoing")
    await clocked.probe("kraken", "system_status")
    await clocked.fault(provider="kraken", endpoint="system_status", status=503)
    await clocked.probe("kraken", "system_status")
    assert await clocked.sample("crypto_api_provider_maintenance", provider="kraken") == 1  # last report still trusted
    clocked.clock.advance(MAINTENANCE_TTL_INTERVALS * INTERVAL + 1)
    assert await clocked.sample("crypto_api_provider_maintenance", provider="kraken") is None


async def test_maintenance_does_not_hide_the_outage_from_the_exporter(clocked: Clocked) -> None:
    """The exporter reports what it sees (offline) and the maintenance beside it; the
    rules decide what to mute."""
    await clocked.fault(provider="okx", status=503)
    await clocked.fault(provider="okx", endpoint="system_status", maintenance="ongoing")
    await clocked.probe("okx", "system_status")
    for endpoint in ("server_time", "btc_ticker"):
        assert (await clocked.probe("okx", endpoint)).outcome is Outcome.SERVER_ERROR
    assert await clocked.sample("crypto_api_provider_status", provider="okx", category="exchanges", status="offline") == 1
    assert await clocked.sample("crypto_api_provider_maintenance", provider="okx") == 1


async def test_a_frozen_price_ends_stale_after_max_unchanged(clocked: Clocked) -> None:
    """binance/btc_ticker's btc_usd has max_unchanged: 3m in the shipped registry."""
    labels = {"provider": "binance", "category": "exchanges", "endpoint": "btc_ticker"}
    changed = {"provider": "binance", "endpoint": "btc_ticker", "name": "btc_usd"}
    await clocked.fault(provider="binance", endpoint="btc_ticker", frozen=True)
    first = await clocked.probe("binance", "btc_ticker")
    assert first.outcome is Outcome.SUCCESS
    price = dict(first.values)["btc_usd"]
    assert await clocked.sample("crypto_api_value_last_change_timestamp_seconds", **changed) == T0

    clocked.clock.advance(180)  # exactly max_unchanged: not beyond it yet
    r = await clocked.probe("binance", "btc_ticker")
    assert (r.outcome, dict(r.values)["btc_usd"]) == (Outcome.SUCCESS, price)

    clocked.clock.advance(1)
    r = await clocked.probe("binance", "btc_ticker")
    assert r.outcome is Outcome.STALE
    assert r.detail == f"value btc_usd unchanged at {price:g} for 181s (max_unchanged 180s)"
    assert await clocked.sample("crypto_api_up", **labels) == 0
    assert await clocked.sample("crypto_api_probes_total", **labels, outcome="stale") == 1
    assert await clocked.sample("crypto_api_probes_total", **labels, outcome="success") == 2
    assert await clocked.sample("crypto_api_value_last_change_timestamp_seconds", **changed) == T0
    assert await clocked.sample("crypto_api_value", **changed) == price
    # The payload's own timestamps kept moving: its freshness is fine, only the value froze.
    assert await clocked.sample("crypto_api_data_age_seconds", provider="binance", endpoint="btc_ticker") is not None
    assert await clocked.sample("crypto_api_provider_status", provider="binance", category="exchanges", status="degraded") == 1
