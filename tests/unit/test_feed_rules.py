"""Venue rules and sequence checks: pure functions, table-driven, on the message shapes
the venues document (feeds.yaml cites them)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from exporter.config import ConfigError
from exporter.feeds.config import SHIPPED, Backoff, load_feeds, parse_feeds
from exporter.feeds.runner import backoff_delay
from exporter.feeds.sequence import Seq, Verdict, advance, check
from exporter.feeds.state import FeedState
from exporter.feeds.venues import RULES, Kind, Venue, asks_reconnect

T = 1_700_000_000.123  # an event time: 2023-11-14T22:13:20.123Z
MS = int(T * 1000)


@pytest.mark.parametrize(
    ("venue", "msg", "stream", "symbol", "event_time", "seq", "price"),
    [
        (Venue.BINANCE, {"e": "trade", "E": MS, "s": "BTCUSDT", "t": 12345, "p": "0.001", "q": "100", "T": MS}, "trade:BTCUSDT", "BTCUSDT", T, None, 0.001),
        (Venue.BINANCE, {"e": "depthUpdate", "E": MS, "s": "BNBBTC", "U": 157, "u": 160, "b": [], "a": []}, "depth:BNBBTC", "BNBBTC", T, Seq(157, 160), None),
        (
            Venue.OKX,
            {"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [{"instId": "BTC-USDT", "last": "9999.99", "ts": str(MS)}]},
            "tickers:BTC-USDT",
            "BTC-USDT",
            T,
            None,
            9999.99,
        ),
        (
            Venue.OKX,
            {
                "arg": {"channel": "books", "instId": "BTC-USDT"},
                "action": "update",
                "data": [{"asks": [], "bids": [], "ts": str(MS), "checksum": 1, "prevSeqId": 122, "seqId": 123}],
            },
            "books:BTC-USDT",
            "BTC-USDT",
            T,
            Seq(123, 123, prev=122),
            None,
        ),
        (
            Venue.BYBIT,
            {
                "topic": "publicTrade.BTCUSDT",
                "type": "snapshot",
                "ts": MS,
                "data": [{"T": MS, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50", "i": "x"}],
            },
            "trade:BTCUSDT",
            "BTCUSDT",
            T,
            None,
            16578.5,
        ),
        (
            Venue.BYBIT,
            {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": MS, "data": {"s": "BTCUSDT", "b": [], "a": [], "u": 13079592, "seq": 22520573250}},
            "orderbook:BTCUSDT",
            "BTCUSDT",
            T,
            Seq(13079592, 13079592),
            None,
        ),
        (
            Venue.KRAKEN,
            {
                "channel": "trade",
                "type": "update",
                "data": [
                    {
                        "symbol": "BTC/USD",
                        "side": "buy",
                        "price": 26000.5,
                        "qty": 0.1,
                        "ord_type": "market",
                        "trade_id": 74,
                        "timestamp": "2023-11-14T22:13:20.123000Z",
                    }
                ],
            },
            "trade:BTC/USD",
            "BTC/USD",
            T,
            Seq(74, 74),
            26000.5,
        ),
        (
            Venue.BITSTAMP,
            {
                "event": "trade",
                "channel": "live_trades_btcusd",
                "data": {"id": 1, "timestamp": "1700000000", "microtimestamp": str(MS * 1000), "amount": 1, "price": 37000},
            },
            "trade:btcusd",
            "btcusd",
            T,
            None,
            37000.0,
        ),
    ],
)
def test_data_messages(venue: Venue, msg: Any, stream: str, symbol: str, event_time: float, seq: Seq | None, price: float | None) -> None:
    parsed = RULES[venue](msg)
    assert parsed.kind is Kind.DATA, parsed.detail
    (item,) = parsed.items
    assert (item.stream, item.symbol, item.seq, item.price) == (stream, symbol, seq, price)
    assert item.event_time == pytest.approx(event_time, abs=1e-3)


def test_coinbase_ticker_carries_the_connection_sequence_and_nanosecond_time() -> None:
    msg = {
        "channel": "ticker",
        "client_id": "",
        "timestamp": "2023-11-14T22:13:20.123456789Z",
        "sequence_num": 7,
        "events": [{"type": "update", "tickers": [{"type": "ticker", "product_id": "BTC-USD", "price": "21932.98"}]}],
    }
    parsed = RULES[Venue.COINBASE](msg)
    assert parsed.kind is Kind.DATA
    conn, ticker = parsed.items
    assert conn.seq == Seq(7, 7) and conn.event_time == pytest.approx(T + 0.000456, abs=1e-5)
    assert (ticker.symbol, ticker.price) == ("BTC-USD", 21932.98)
    hb = RULES[Venue.COINBASE]({"channel": "heartbeats", "client_id": "", "timestamp": "x", "sequence_num": 8, "events": []})
    assert hb.kind is Kind.HEARTBEAT and hb.items[0].seq == Seq(8, 8)


@pytest.mark.parametrize(
    ("venue", "msg", "kind"),
    [
        (Venue.BINANCE, {"result": None, "id": 1}, Kind.CONTROL),
        (Venue.KRAKEN, {"channel": "heartbeat"}, Kind.HEARTBEAT),
        (Venue.KRAKEN, {"method": "subscribe", "success": True, "result": {}}, Kind.CONTROL),
        (Venue.OKX, "pong", Kind.HEARTBEAT),
        (Venue.OKX, {"event": "subscribe", "arg": {"channel": "tickers", "instId": "BTC-USDT"}}, Kind.CONTROL),
        (Venue.BYBIT, {"success": True, "ret_msg": "pong", "conn_id": "x", "op": "ping"}, Kind.HEARTBEAT),
        (Venue.BITSTAMP, {"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}}, Kind.HEARTBEAT),
        (Venue.BITSTAMP, {"event": "bts:subscription_succeeded", "channel": "live_trades_btcusd", "data": {}}, Kind.CONTROL),
    ],
)
def test_heartbeats_and_acks_are_not_data(venue: Venue, msg: Any, kind: Kind) -> None:
    assert RULES[venue](msg).kind is kind


@pytest.mark.parametrize(
    ("venue", "msg", "detail"),
    [
        (Venue.BINANCE, {"e": "trade", "E": "soon", "s": "BTCUSDT", "p": "1"}, "E: not a number"),
        (Venue.BINANCE, {"e": "depthUpdate", "E": MS, "s": "BTCUSDT", "U": 1.5, "u": 2}, "U: not an integer"),
        (Venue.BINANCE, [1, 2, 3], "message: not an object"),
        (Venue.OKX, {"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [{"last": "NaN", "ts": "1"}]}, "last: not finite"),
        (Venue.OKX, {"data": []}, "arg: not an object"),
        (
            Venue.KRAKEN,
            {"channel": "trade", "data": [{"symbol": "BTC/USD", "trade_id": 1, "price": 1, "timestamp": "yesterday"}]},
            "timestamp: not an RFC 3339 time",
        ),
        (Venue.COINBASE, {"channel": "ticker", "timestamp": "x"}, "sequence_num: not an integer"),
        (Venue.BYBIT, {"topic": "orderbook.50.BTCUSDT", "ts": 1, "data": []}, "data: not an object"),
        (Venue.BITSTAMP, {"event": "trade", "channel": "live_trades_btcusd", "data": {"price": True}}, "microtimestamp: not a number"),
    ],
)
def test_unreadable_messages_are_malformed_with_the_field_named(venue: Venue, msg: Any, detail: str) -> None:
    parsed = RULES[venue](msg)
    assert (parsed.kind, parsed.detail) == (Kind.MALFORMED, detail)


def test_bitstamp_reconnect_request() -> None:
    assert asks_reconnect(Venue.BITSTAMP, {"event": "bts:request_reconnect", "channel": "", "data": ""})
    assert not asks_reconnect(Venue.BINANCE, {"event": "bts:request_reconnect"})


@pytest.mark.parametrize(
    ("last", "seq", "verdict", "after"),
    [
        (None, Seq(5, 9), Verdict.START, 9),
        (9, Seq(10, 12), Verdict.OK, 12),  # Binance: U == previous u + 1
        (9, Seq(11, 12), Verdict.GAP, 12),
        (9, Seq(9, 9), Verdict.OUT_OF_ORDER, 9),  # a repeat
        (9, Seq(3, 4), Verdict.OUT_OF_ORDER, 9),  # older: the baseline does not move back
        (9, Seq(1, 1, reset=True), Verdict.START, 1),  # Bybit u == 1 after a restart
        (122, Seq(123, 123, prev=122), Verdict.OK, 123),  # OKX linked
        (123, Seq(123, 123, prev=123), Verdict.OK, 123),  # OKX unchanged book repeats seqId
        (122, Seq(130, 130, prev=125), Verdict.GAP, 130),
        (130, Seq(120, 120, prev=119), Verdict.OUT_OF_ORDER, 130),
    ],
)
def test_sequence_checks(last: int | None, seq: Seq, verdict: Verdict, after: int) -> None:
    assert check(last, seq) is verdict
    assert advance(last, seq, verdict) == after


def test_feed_state_counts_one_gap_per_skip_and_one_lag_per_message() -> None:
    spec = load_feeds(SHIPPED).feeds[0]
    state = FeedState(spec)
    rule = RULES[Venue.BINANCE]
    for u in (1, 2, 4, 5, 7):  # two skips
        state.observe(rule({"e": "depthUpdate", "E": MS, "s": "BTCUSDT", "U": u, "u": u, "b": [], "a": []}), T + 0.2)
    assert (state.gaps, state.messages, state.lag.count) == (2, 5, 5)
    assert state.lag.sum == pytest.approx(5 * 0.2, abs=1e-3)


def test_frozen_price() -> None:
    spec = load_feeds(SHIPPED).feeds[0]
    state = FeedState(spec)
    rule = RULES[Venue.BINANCE]
    for i in range(5):
        state.observe(rule({"e": "trade", "E": MS, "s": "BTCUSDT", "p": "100.0"}), T + i * 100)
    assert state.prices["BTCUSDT"].changed_at == T
    assert state.frozen("BTCUSDT", T + 400) and not state.frozen("BTCUSDT", T + 100)


def test_backoff_doubles_to_its_ceiling_with_jitter_and_never_zero() -> None:
    b = Backoff(initial=1.0, max=60.0, stable_after=60.0)
    rng = random.Random(1)
    delays = [backoff_delay(b, n, rng) for n in range(10)]
    for n, d in enumerate(delays):
        ceiling = min(60.0, 2.0**n)
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(b, 10_000, rng) <= 60.0


def test_the_shipped_feeds_file_has_six_venues_with_btc_and_eth() -> None:
    config = load_feeds(SHIPPED)
    assert {f.venue for f in config.feeds} == set(Venue)
    for f in config.feeds:
        text = " ".join(f.subscribe).lower()
        assert "btc" in text and "eth" in text, f.name
        assert f.url.startswith("wss://")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"feeds": [{"provider": "x", "name": "a", "venue": "ftx", "url": "wss://a", "subscribe": ["s"]}]}, "feeds[x/a].venue: Input should be"),
        ({"feeds": [{"provider": "x", "name": "a", "venue": "okx", "url": "https://a", "subscribe": ["s"]}]}, "feeds[x/a].url: String should match pattern"),
        (
            {"feeds": [{"provider": "x", "name": "a", "venue": "okx", "url": "wss://a", "subscribe": ["s"], "max_silence": "soon"}]},
            "feeds[x/a].max_silence: Value error, invalid duration",
        ),
        ({"feeds": [{"provider": "x", "name": "a", "venue": "okx", "url": "wss://a", "subscribe": []}]}, "feeds[x/a].subscribe: "),
        (
            {"feeds": [{"provider": "x", "name": "a", "venue": "okx", "url": "wss://a", "subscribe": ["s"], "colour": 1}]},
            "feeds[x/a].colour: Extra inputs are not permitted",
        ),
        ({"feeds": [{"provider": "x", "name": "a", "venue": "okx", "url": "wss://a", "subscribe": ["s"]}] * 2}, "feeds[x/a]: duplicate feed"),
    ],
)
def test_config_errors_name_the_feed_and_field(data: Any, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_feeds(data, "feeds.yaml")
    assert any(error in line for line in e.value.errors), e.value.errors


def test_feed_families_are_designs_contract_additions() -> None:
    """The six feed names and labels of DESIGN.md's "Contract additions" table, exactly."""
    from pathlib import Path

    from exporter.families import FEEDS

    design = Path("/work/shared/DESIGN.md")
    doc = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    text = design.read_text() if design.exists() else doc.read_text()
    for family in FEEDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{family.name}` |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == family.type.value, family.name
        assert tuple(x.strip() for x in cells[2].split(",")) == family.labels, family.name
