"""Feeds against the simulator's WebSocket venues, on loopback: silence, gaps, lag,
malformed frames and a reconnect storm, read from the exporter's /metrics and store.

Real sockets, so real time: max_silence and backoffs are shortened (a scale of 1/100
of production), and each wait polls for a condition with a deadline, never a fixed sleep
whose length would be the assertion.

Most tests read the feeds in the test's own event loop (`--feeds.in-process`: they
look at runners); those marked CHILD run them through the feeds process, as `run --feeds`
and `demo` do (exporter/feeds/process.py), end to end: the child connects to the
simulator in this process over loopback, the mirror store is read."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter, build_app
from exporter.feeds.config import SHIPPED, Backoff, FeedsConfig, load_feeds
from exporter.feeds.process import ChildOptions, FeedProcess
from exporter.feeds.state import FeedState, FeedStore
from exporter.feeds.venues import Venue
from exporter.simulator.feeds import FeedFault, simulator_feeds
from exporter.web.server import WebOptions, serve
from tests.harness import SimHarness, simulated_loader, start_simulated

DEADLINE = 15.0  # seconds a condition may take on a loaded CI machine
FAST = Backoff(initial=0.05, max=0.4, stable_after=5.0)
# The feeds process as the CLI starts it, with a quick restart (and quiet: its info lines
# would go to the test's stderr).
CHILD = ChildOptions(log_level="warning", restart_initial=0.1, restart_max=1.0)


def shipped(sim_url: str, only: Venue | None = None, **timing: object) -> FeedsConfig:
    config = simulator_feeds(load_feeds(SHIPPED), sim_url, **({"max_silence": 1.0, "backoff": FAST} | timing))
    if only is not None:
        config = replace(config, feeds=tuple(f for f in config.feeds if f.venue is only))
    return config


@pytest.fixture
async def feeds_harness(request: pytest.FixtureRequest) -> AsyncIterator[SimHarness]:
    param = getattr(request, "param", None)
    only, child = param if isinstance(param, tuple) else (param, None)  # (venue, CHILD): through the feeds process
    sim, keys = await start_simulated()
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, feeds_loader=lambda: shipped(sim.url, only), feeds_process=child)
    runner, port = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield SimHarness(sim, exporter, http, f"http://127.0.0.1:{port}")
    await runner.cleanup()
    await sim.stop()


async def until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.02)


def feed(h: SimHarness, provider: str) -> FeedState:
    return next(f for f in h.exporter.feed_store if f.spec.provider == provider)


async def samples(h: SimHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with h.http.get(f"{h.base}/metrics") as r:
        text = await r.text()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_every_venue_delivers_prices_lag_and_sequences(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    await until(lambda: all(f.messages >= 10 and len(f.prices) == 2 for f in h.exporter.feed_store), "every feed sees BTC and ETH prices")
    m = await samples(h)
    for f in h.exporter.feed_store:
        labels = (("feed", f.spec.name), ("provider", f.spec.provider))
        assert m[("crypto_api_feed_connected", labels)] == 1.0
        assert m[("crypto_api_feed_messages_total", labels)] >= 10
        assert m[("crypto_api_feed_message_lag_seconds_count", labels)] >= 10
        assert m[("crypto_api_feed_sequence_gaps_total", labels)] == 0, f.spec.provider
        assert m[("crypto_api_feed_malformed_messages_total", labels)] == 0, (f.spec.provider, f.last_malformed)
    assert len(h.exporter.feed_store.feeds) == 6


@pytest.mark.parametrize("feeds_harness", [Venue.BINANCE, (Venue.BINANCE, CHILD)], indirect=True, ids=["in_process", "child"])
async def test_silence_reconnects_with_reason_silence_and_recovers(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    f = feed(h, "binance")
    await until(lambda: f.connected and f.messages > 0, "connected")
    h.sim.feeds.set_fault(Venue.BINANCE, FeedFault(silence=True))
    await until(lambda: f.reconnects["silence"] >= 1, "a silence reconnect")
    assert not f.connected or f.reconnects["silence"] >= 1
    h.sim.feeds.clear()
    before = f.messages
    await until(lambda: f.connected and f.messages > before, "connected again with data")
    m = await samples(h)
    labels = (("feed", f.spec.name), ("provider", "binance"))
    assert m[("crypto_api_feed_reconnects_total", (*labels[:1], ("provider", "binance"), ("reason", "silence")))] >= 1
    assert m[("crypto_api_feed_connected", labels)] == 1.0


@pytest.mark.parametrize("feeds_harness", [Venue.BINANCE, (Venue.BINANCE, CHILD)], indirect=True, ids=["in_process", "child"])
async def test_connected_dips_during_silence(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    f = feed(h, "binance")
    seen: list[bool] = []
    h.exporter.feed_store.listeners.append(lambda s: seen.append(s.connected))
    await until(lambda: f.connected and f.messages > 0, "connected")
    h.sim.feeds.set_fault(Venue.BINANCE, FeedFault(silence=True))
    await until(lambda: False in seen, "connected dips to 0")
    h.sim.feeds.clear()
    await until(lambda: seen[-1] is True and f.messages > 0, "connected back to 1")


@pytest.mark.parametrize("child", [None, CHILD], ids=["in_process", "child"])
@pytest.mark.parametrize("venue", [Venue.BINANCE, Venue.COINBASE, Venue.KRAKEN, Venue.OKX, Venue.BYBIT])
async def test_each_injected_gap_counts_exactly_once(venue: Venue, child: ChildOptions | None) -> None:
    sim, keys = await start_simulated()
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, feeds_loader=lambda: shipped(sim.url, venue, max_silence=30.0), feeds_process=child)
    runner, _ = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        f = next(iter(exporter.feed_store))
        await until(lambda: f.connected and f.messages > 5, "connected")
        sim.feeds.set_fault(venue, FeedFault(gaps=3))
        await until(lambda: sim.feeds.fault(venue).gaps == 0, "the simulator sent its gaps")
        settled = f.messages
        await until(lambda: f.messages > settled + 10, "more messages after the gaps")
        assert f.gaps == 3
        assert sum(f.reconnects.values()) == 0  # on_gap: count keeps the connection
    finally:
        await runner.cleanup()
        await sim.stop()


@pytest.mark.parametrize("feeds_harness", [Venue.OKX], indirect=True)
async def test_lagging_event_times_move_the_lag_histogram(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    f = feed(h, "okx")
    await until(lambda: f.lag.count > 5, "lag observed")
    slow_before = sum(f.lag.counts[f.lag.bounds.index(5.0) + 1 :])
    assert slow_before == 0
    h.sim.feeds.set_fault(Venue.OKX, FeedFault(lag_seconds=8.0))
    await until(lambda: sum(f.lag.counts[f.lag.bounds.index(5.0) + 1 :]) >= 5, "lags above 5 s")
    m = await samples(h)
    le5 = m[("crypto_api_feed_message_lag_seconds_bucket", (("feed", f.spec.name), ("le", "5.0"), ("provider", "okx")))]
    total = m[("crypto_api_feed_message_lag_seconds_count", (("feed", f.spec.name), ("provider", "okx")))]
    assert total - le5 >= 5


@pytest.mark.parametrize("feeds_harness", [Venue.KRAKEN], indirect=True)
async def test_malformed_frames_are_counted_and_keep_the_connection(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    f = feed(h, "kraken")
    await until(lambda: f.connected and f.messages > 3, "connected")
    h.sim.feeds.set_fault(Venue.KRAKEN, FeedFault(malformed=4))
    await until(lambda: f.malformed == 4, "4 malformed frames counted")
    before = f.messages
    await until(lambda: f.messages > before + 3, "data goes on")
    assert f.connected and sum(f.reconnects.values()) == 0


@pytest.mark.parametrize("feeds_harness", [Venue.BYBIT], indirect=True)
async def test_frozen_price_keeps_its_last_change_time(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    f = feed(h, "bybit")
    await until(lambda: "BTCUSDT" in f.prices, "a price")
    h.sim.feeds.set_fault(Venue.BYBIT, FeedFault(frozen=True))
    await asyncio.sleep(0.3)  # let the last moving price land
    changed = f.prices["BTCUSDT"].changed_at
    seen = f.prices["BTCUSDT"].seen_at
    await until(lambda: f.prices["BTCUSDT"].seen_at > seen + 0.5, "frozen prices keep arriving")
    assert f.prices["BTCUSDT"].changed_at == changed


async def test_a_reconnect_storm_backs_off_and_stays_bounded() -> None:
    """The server closes every connection 50 ms after it opened (a second, at 1/20 scale),
    for 3 s: connections stay far below one per close period once the backoff grows,
    the wait never exceeds backoff_max, and tasks and memory stay flat."""
    sim, keys = await start_simulated()
    storm_backoff = Backoff(initial=0.02, max=0.2, stable_after=1.0)
    exporter = Exporter(
        simulated_loader(sim, keys),
        process_metrics=False,
        feeds_loader=lambda: shipped(sim.url, Venue.BINANCE, max_silence=5.0, backoff=storm_backoff),
    )
    runner, _ = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        f = next(iter(exporter.feed_store))
        await until(lambda: f.connected, "connected")
        sim.feeds.set_fault(Venue.BINANCE, FeedFault(close_every=0.05))
        await asyncio.sleep(0.5)
        gc.collect()
        tracemalloc.start()
        tasks_before = len(asyncio.all_tasks())
        mem_before = tracemalloc.get_traced_memory()[0]
        closes_before = f.reconnects["closed"]
        tasks = []
        for _ in range(12):  # 3 s, sampled: the count must not grow with the reconnects
            await asyncio.sleep(0.25)
            tasks.append(len(asyncio.all_tasks()))
        gc.collect()
        mem_after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        tasks_after = len(asyncio.all_tasks())
        closes = f.reconnects["closed"] - closes_before
        runner_ = next(iter(exporter.feeds.runners.values()))
        # Without backoff: one connection per 50 ms plus connect time, ~50 in 3 s. With it,
        # each wait is 0.1-0.2 s once grown: at most 3 / (0.05 + 0.1) = 20.
        assert 3 <= closes <= 20, closes
        assert max(runner_.delays) <= storm_backoff.max
        assert min(runner_.delays[-5:]) >= storm_backoff.max / 2  # grown to the ceiling's jitter band
        # A connection being opened or closed holds a few tasks on both sides (the simulator
        # runs in this process: its handler and writer); 15+ reconnects leaking one each
        # would show far above this.
        assert max(tasks) <= tasks_before + 8 and tasks_after <= tasks_before + 8, (tasks_before, tasks, tasks_after)
        assert mem_after - mem_before < 2_000_000, mem_after - mem_before
        sim.feeds.clear()
        await until(lambda: f.connected and f.messages > 0, "recovers once the storm ends")
    finally:
        await runner.cleanup()
        await sim.stop()


async def test_api_feeds_lists_every_feed_with_prices(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    await until(lambda: all(len(f.prices) == 2 for f in h.exporter.feed_store), "prices on every feed")
    async with h.http.get(f"{h.base}/api/feeds") as r:
        assert r.status == 200
        body = await r.json()
    assert [(f["provider"], f["venue"]) for f in body] == sorted((f["provider"], f["venue"]) for f in body)
    assert {f["venue"] for f in body} == {v.value for v in Venue}
    for f in body:
        assert f["connected"] and f["messages"] > 0 and len(f["prices"]) == 2 and f["max_silence_seconds"] == 1.0
        assert f["lag_p50_seconds"] is not None
    async with h.http.get(f"{h.base}/openapi.json") as r:
        paths = (await r.json())["paths"]
    assert "/api/feeds" in paths and "/ws/market_data" in paths


@pytest.mark.parametrize("feeds_harness", [Venue.COINBASE], indirect=True)
async def test_ws_market_data_streams_changed_prices_at_most_once_an_interval(feeds_harness: SimHarness) -> None:
    h = feeds_harness
    await until(lambda: len(feed(h, "coinbase").prices) == 2, "prices")
    loop = asyncio.get_running_loop()
    async with h.http.ws_connect(f"{h.base}/ws/market_data") as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "connection_established" and hello["data"]["types"] == ["market_data", "ping"]
        started = loop.time()
        messages = []
        while len(messages) < 3:
            msg = await ws.receive_json(timeout=5)
            if msg["type"] == "market_data":
                messages.append(msg)
        elapsed = loop.time() - started
    first = {(p["provider"], p["symbol"]) for p in messages[0]["data"]["prices"]}
    assert {("coinbase", "BTC-USD"), ("coinbase", "ETH-USD")} <= first
    assert all(p["source"] == "feed" and p["price"] > 0 for p in messages[0]["data"]["prices"])
    # The feed sends 10 prices a second; the stream sends one message per interval (1 s).
    assert len(messages) <= elapsed / 1.0 + 1.5


async def test_reload_keeps_unchanged_feeds_restarts_changed_and_drops_removed() -> None:
    sim, keys = await start_simulated()
    current = {"config": shipped(sim.url)}
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, feeds_loader=lambda: current["config"])
    runner, _ = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        store = exporter.feed_store
        await until(lambda: all(f.messages > 0 for f in store), "every feed delivering")
        kept = store.get("binance", "spot_trades_depth")
        old_okx_runner = next(r for k, r in exporter.feeds.runners.items() if k[0] == "okx")
        feeds = tuple(f if f.venue is not Venue.OKX else replace(f, max_silence=2.0) for f in current["config"].feeds if f.venue is not Venue.KRAKEN)
        current["config"] = replace(current["config"], feeds=feeds)
        assert exporter.reload() == []
        await until(lambda: len(exporter.feeds.runners) == 5 and ("kraken", "spot_trades") not in exporter.feeds.runners, "kraken's runner stopped")
        assert store.get("binance", "spot_trades_depth") is kept  # same spec: same state, same counters
        assert store.get("kraken", "spot_trades") is None
        new_okx = store.get("okx", "spot_tickers_books")
        assert new_okx is not None and new_okx.spec.max_silence == 2.0
        await until(lambda: new_okx.messages > 0, "okx delivering again with its new spec")
        assert exporter.feeds.runners[("okx", "spot_tickers_books")] is not old_okx_runner
        m = await samples_of(exporter)
        assert not any(labels for name, labels in m if name.startswith("crypto_api_feed_") and ("provider", "kraken") in labels)
    finally:
        await runner.cleanup()
        await sim.stop()


async def samples_of(exporter: Exporter) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    text = exporter.exposition.render().decode()
    return {(s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.parametrize("feeds_harness", [Venue.BINANCE], indirect=True)
async def test_a_feed_down_makes_an_online_provider_degraded_not_offline(feeds_harness: SimHarness) -> None:
    from exporter.model import ProviderStatus

    h = feeds_harness
    f = feed(h, "binance")
    await until(lambda: f.connected, "connected")
    for endpoint in h.exporter.config.provider("binance").endpoints:
        await h.probe("binance", endpoint.name)
    provider = h.exporter.state.providers["binance"]
    assert provider.status() is ProviderStatus.ONLINE
    seen: list[ProviderStatus] = []
    h.exporter.feed_store.listeners.append(lambda s: seen.append(provider.status()))  # after the exporter's own listener
    h.sim.feeds.set_fault(Venue.BINANCE, FeedFault(close=True))
    await until(lambda: ProviderStatus.DEGRADED in seen, "degraded while the feed is down")
    await until(lambda: f.connected and provider.status() is ProviderStatus.ONLINE, "online again once it reconnects")
    assert ProviderStatus.OFFLINE not in seen


# ---------------------------------------------------------------- the feeds process (CHILD)


def connected_samples(m: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {dict(labels)["provider"]: v for (name, labels), v in m.items() if name == "crypto_api_feed_connected"}


@pytest.mark.parametrize("feeds_harness", [(None, CHILD)], indirect=True, ids=["child"])
async def test_a_killed_feeds_process_drops_connected_then_recovers(feeds_harness: SimHarness) -> None:
    """SIGKILL the child: every feed shows disconnected (reason error) at once, never
    stale data; the supervisor restarts it and the counters carry on from where they were."""
    import os
    import signal

    h = feeds_harness
    feeds = h.exporter.feeds
    assert isinstance(feeds, FeedProcess)
    await until(lambda: feeds.process is not None and all(f.connected and f.messages > 0 for f in h.exporter.feed_store), "every feed delivering")
    m = await samples(h)
    assert set(connected_samples(m).values()) == {1.0} and len(connected_samples(m)) == 6
    first = feeds.process
    assert first is not None
    messages = {f.key: f.messages for f in h.exporter.feed_store}
    os.kill(first.pid, signal.SIGKILL)
    await until(lambda: not any(f.connected for f in h.exporter.feed_store), "every feed marked disconnected")
    m = await samples(h)
    assert set(connected_samples(m).values()) == {0.0}
    assert all(f.reconnects["error"] >= 1 for f in h.exporter.feed_store)
    assert first.returncode == -signal.SIGKILL
    await until(lambda: feeds.started == 2 and all(f.connected for f in h.exporter.feed_store), "restarted, connected again")
    await until(lambda: all(f.messages > messages[f.key] + 5 for f in h.exporter.feed_store), "counting on from the old totals")
    m = await samples(h)
    assert set(connected_samples(m).values()) == {1.0}
    for f in h.exporter.feed_store:
        labels = (("feed", f.spec.name), ("provider", f.spec.provider))
        assert m[("crypto_api_feed_messages_total", labels)] > messages[f.key]  # no counter reset
        assert m[("crypto_api_feed_reconnects_total", (*labels[:1], ("provider", f.spec.provider), ("reason", "error")))] >= 1


async def test_a_reload_adding_and_removing_feeds_reaches_the_feeds_process() -> None:
    sim, keys = await start_simulated()
    full = shipped(sim.url)
    current = {"config": replace(full, feeds=tuple(f for f in full.feeds if f.venue is not Venue.KRAKEN))}
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, feeds_loader=lambda: current["config"], feeds_process=CHILD)
    runner, _ = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    try:
        store = exporter.feed_store
        await until(lambda: len(store.feeds) == 5 and all(f.messages > 0 for f in store), "five feeds delivering")
        assert not any(c.venue is Venue.KRAKEN for c in sim.feeds.conns)
        kept = store.get("binance", "spot_trades_depth")
        current["config"] = replace(full, feeds=tuple(f for f in full.feeds if f.venue is not Venue.OKX))  # kraken in, okx out
        assert exporter.reload() == []
        assert store.get("okx", "spot_tickers_books") is None  # gone from the mirror at once
        kraken = store.get("kraken", "spot_trades")
        assert kraken is not None
        await until(lambda: kraken.connected and kraken.messages > 0, "the child opened kraken and its data reaches the mirror")
        await until(lambda: not any(c.venue is Venue.OKX for c in sim.feeds.conns), "the child closed okx's connection")
        assert store.get("binance", "spot_trades_depth") is kept and kept is not None and kept.messages > 0
        m = await samples_of(exporter)
        assert not any(("provider", "okx") in labels for name, labels in m if name.startswith("crypto_api_feed_"))
        assert exporter.feeds.started == 1  # type: ignore[union-attr]  # the same child, reconfigured
    finally:
        await runner.cleanup()
        await sim.stop()


async def test_the_feeds_process_stops_gracefully_and_a_stop_during_the_restart_backoff_does_not_wait() -> None:
    import os
    import signal

    feeds = FeedProcess(FeedStore(), replace(CHILD, restart_initial=60.0, stop_timeout=5.0))
    feeds.apply(FeedsConfig())
    await feeds.start()
    await until(lambda: feeds.process is not None, "the child started")
    child = feeds.process
    assert child is not None
    await asyncio.wait_for(feeds.stop(), 4.0)  # stdin closed: it exits by itself, before stop_timeout
    assert child.returncode == 0
    await feeds.start()
    await until(lambda: feeds.process is not None, "a child again")
    child = feeds.process
    assert child is not None
    os.kill(child.pid, signal.SIGKILL)
    await until(lambda: feeds.process is None, "the child is gone; the supervisor waits out its 60 s backoff")
    await asyncio.wait_for(feeds.stop(), 4.0)
    assert feeds.started == 2


@pytest.mark.parametrize("feeds_harness", [(Venue.BINANCE, CHILD)], indirect=True, ids=["child"])
async def test_a_stuck_feeds_process_is_killed_and_restarted(feeds_harness: SimHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that stops answering (SIGSTOP: its loop frozen, its socket open) must not
    leave the mirror showing a live feed: without a frame (it sends one a second) for
    UNRESPONSIVE seconds it is killed, the feed marked down, and a new child started."""
    import os
    import signal

    from exporter.feeds import process

    monkeypatch.setattr(process, "UNRESPONSIVE", 1.5)
    h = feeds_harness
    feeds = h.exporter.feeds
    assert isinstance(feeds, FeedProcess)
    f = feed(h, "binance")
    await until(lambda: feeds.process is not None and f.connected and f.messages > 0, "connected through the child")
    stuck = feeds.process
    assert stuck is not None
    os.kill(stuck.pid, signal.SIGSTOP)
    try:
        await until(lambda: not f.connected, "marked down once the child went quiet")
        assert f.reconnects["error"] == 1
        await until(lambda: feeds.started == 2 and f.connected, "a new child, connected")
        assert stuck.returncode == -signal.SIGKILL
    finally:
        if stuck.returncode is None:
            os.kill(stuck.pid, signal.SIGKILL)
