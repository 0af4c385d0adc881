"""Per-venue rules: how one parsed message of a venue's public market-data stream reads.

Each rule is a pure function from a parsed JSON message to a `Parsed`: data (with, per
trade or book entry, the venue's event time, sequence numbers and price), heartbeat,
control (acks, pongs, status) or malformed. No I/O and no state: the runner
(runner.py) does the sequence checks across messages with sequence.py. Facts about each
venue's messages are cited in feeds.yaml beside the feed that uses them; what could not
be confirmed is marked there and in docs/feeds.md.

A field of the wrong type or a missing field makes the message `malformed` (counted,
the connection stays): a venue that changes its shapes must show up, not crash us.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from .. import limits
from .sequence import Seq


class Venue(StrEnum):
    BINANCE = "binance"
    COINBASE = "coinbase"
    KRAKEN = "kraken"
    OKX = "okx"
    BYBIT = "bybit"
    BITSTAMP = "bitstamp"


class Kind(StrEnum):
    DATA = "data"
    HEARTBEAT = "heartbeat"  # keeps the connection alive; not data (silence ignores it)
    CONTROL = "control"  # subscription acks, pongs, status notices
    MALFORMED = "malformed"


# Item and Parsed are NamedTuples, not frozen dataclasses: one or two are built per
# message at tens of thousands a second, and a frozen dataclass's __init__ (a
# object.__setattr__ per field) cost a fifth of the per-message budget (bench/feeds.py).
class Item(NamedTuple):
    """One trade, ticker or book update inside a data message."""

    stream: str  # what the sequence check is keyed on: channel and symbol
    symbol: str | None = None
    event_time: float | None = None  # unix seconds, the venue's own clock
    seq: Seq | None = None
    price: float | None = None


class Parsed(NamedTuple):
    kind: Kind
    items: tuple[Item, ...] = ()
    detail: str = ""  # why a message is malformed (short, no input echoed)


HEARTBEAT = Parsed(Kind.HEARTBEAT)
CONTROL = Parsed(Kind.CONTROL)


class Malformed(ValueError):
    """A message the rule cannot read; the text says which field."""


def _malformed(detail: str) -> Parsed:
    return Parsed(Kind.MALFORMED, detail=detail)


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Malformed(f"{what}: not a number")
    try:
        n = float(value)
    except ValueError:
        raise Malformed(f"{what}: not a number") from None
    if n != n or n in (float("inf"), float("-inf")):
        raise Malformed(f"{what}: not finite")
    return n


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise Malformed(f"{what}: not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 40:
        return int(value)
    raise Malformed(f"{what}: not an integer")


def _ms(value: Any, what: str) -> float:
    return _num(value, what) / 1000.0


def _rfc3339(value: Any, what: str) -> float:
    """`2023-09-25T07:49:37.708706Z`, nanoseconds allowed (Coinbase sends nine digits)."""
    if not isinstance(value, str) or len(value) > 40:
        raise Malformed(f"{what}: not an RFC 3339 time")
    text = value.replace("Z", "+00:00")
    if "." in text:  # fromisoformat takes at most 6 fraction digits
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise Malformed(f"{what}: not an RFC 3339 time") from None


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what}: not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{what}: not a list")
    return value[: limits.FEED_ITEMS_PER_MESSAGE]


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Malformed(f"{what}: not a short string")
    return value


# ---------------------------------------------------------------- Binance spot
# Raw streams on /ws after a SUBSCRIBE: `trade` ({e, E, s, t, p, q, T}) and diff depth
# `depthUpdate` ({e, E, s, U, u, b, a}); next U == previous u + 1 within a symbol.


def binance(msg: Any) -> Parsed:
    if isinstance(msg, dict) and "e" not in msg:
        return CONTROL if "id" in msg else _malformed("e: missing")  # {"result": null, "id": 1}
    m = _dict(msg, "message")
    event = m["e"]
    symbol = _str(m.get("s"), "s")
    if event == "trade":
        return Parsed(Kind.DATA, (Item(f"trade:{symbol}", symbol, _ms(m.get("E"), "E"), None, _num(m.get("p"), "p")),))
    if event == "depthUpdate":
        seq = Seq(_int(m.get("U"), "U"), _int(m.get("u"), "u"))
        return Parsed(Kind.DATA, (Item(f"depth:{symbol}", symbol, _ms(m.get("E"), "E"), seq),))
    return CONTROL  # another event type the venue may add: not ours to judge


# ---------------------------------------------------------------- Coinbase Advanced Trade
# {channel, client_id, timestamp, sequence_num, events: [...]}; sequence_num counts every
# message of the connection, all channels, so one stream per connection. `heartbeats`
# keeps subscriptions open; `subscriptions` acks.


def coinbase(msg: Any) -> Parsed:
    m = _dict(msg, "message")
    channel = m.get("channel")
    if channel is None and m.get("type") == "error":
        return CONTROL
    seq_num = _int(m.get("sequence_num"), "sequence_num")
    seq = Seq(seq_num, seq_num)
    if channel in ("heartbeats", "subscriptions"):
        # Heartbeats use the connection's sequence too: a gap there is a lost message.
        return Parsed(Kind.HEARTBEAT, (Item("connection", seq=seq),))
    if channel != "ticker":
        return Parsed(Kind.CONTROL, (Item("connection", seq=seq),))
    at = _rfc3339(m.get("timestamp"), "timestamp")
    items = [Item("connection", seq=seq, event_time=at)]
    for event in _list(m.get("events"), "events"):
        for t in _list(_dict(event, "events[]").get("tickers"), "events[].tickers"):
            t = _dict(t, "tickers[]")
            items.append(Item("ticker", _str(t.get("product_id"), "product_id"), None, None, _num(t.get("price"), "price")))
    return Parsed(Kind.DATA, tuple(items))


# ---------------------------------------------------------------- Kraken spot v2
# {channel: trade, type: snapshot|update, data: [{symbol, side, price, qty, ord_type,
# trade_id, timestamp}]}; {channel: heartbeat} about every second without other traffic;
# {method: subscribe, success, result} acks; {channel: status} on connect.


def kraken(msg: Any) -> Parsed:
    m = _dict(msg, "message")
    channel = m.get("channel")
    if channel == "heartbeat":
        return HEARTBEAT
    if channel != "trade":
        return CONTROL  # status, acks ("method"), pong
    snapshot = m.get("type") == "snapshot"
    items = []
    for t in _list(m.get("data"), "data"):
        t = _dict(t, "data[]")
        symbol = _str(t.get("symbol"), "symbol")
        trade_id = _int(t.get("trade_id"), "trade_id")
        # A snapshot replays recent trades: it restarts the sequence rather than continuing it.
        seq = Seq(trade_id, trade_id, reset=snapshot)
        items.append(Item(f"trade:{symbol}", symbol, _rfc3339(t.get("timestamp"), "timestamp"), seq, _num(t.get("price"), "price")))
    return Parsed(Kind.DATA, tuple(items))


# ---------------------------------------------------------------- OKX v5 public
# Pushes {arg: {channel, instId}, action?, data: [...]}; `tickers` data {instId, last, ts};
# `books` data {asks, bids, ts, checksum, prevSeqId, seqId}: prevSeqId == previous seqId,
# -1 on a snapshot. Text "pong" answers our text "ping"; {event: subscribe|error} acks.


def okx(msg: Any) -> Parsed:
    if msg == "pong":
        return HEARTBEAT
    m = _dict(msg, "message")
    if "event" in m:
        return CONTROL
    arg = _dict(m.get("arg"), "arg")
    channel = arg.get("channel")
    inst = _str(arg.get("instId"), "arg.instId")
    items = []
    if channel == "tickers":
        for d in _list(m.get("data"), "data"):
            d = _dict(d, "data[]")
            items.append(Item(f"tickers:{inst}", inst, _ms(d.get("ts"), "ts"), None, _num(d.get("last"), "last")))
    elif channel == "books":
        snapshot = m.get("action") == "snapshot"
        for d in _list(m.get("data"), "data"):
            d = _dict(d, "data[]")
            seq = Seq(_int(d.get("seqId"), "seqId"), _int(d.get("seqId"), "seqId"), prev=_int(d.get("prevSeqId"), "prevSeqId"), reset=snapshot)
            items.append(Item(f"books:{inst}", inst, _ms(d.get("ts"), "ts"), seq))
    else:
        return CONTROL
    return Parsed(Kind.DATA, tuple(items))


# ---------------------------------------------------------------- Bybit v5 public spot
# {topic, type: snapshot|delta, ts, data, cts?}; `publicTrade.S` data [{T, s, S, v, p, i}];
# `orderbook.50.S` data {s, b, a, u, seq}: u is contiguous on deltas, a snapshot (or u ==
# 1, a service restart) resets. Pong {op: ping|pong, ret_msg: pong}; acks {op: subscribe}.


def bybit(msg: Any) -> Parsed:
    m = _dict(msg, "message")
    if "op" in m:
        return HEARTBEAT if m.get("op") in ("ping", "pong") else CONTROL
    topic = _str(m.get("topic"), "topic")
    ts = _ms(m.get("ts"), "ts")
    if topic.startswith("publicTrade."):
        items = []
        for t in _list(m.get("data"), "data"):
            t = _dict(t, "data[]")
            items.append(Item(f"trade:{_str(t.get('s'), 's')}", t["s"], _ms(t.get("T"), "T"), None, _num(t.get("p"), "p")))
        return Parsed(Kind.DATA, tuple(items))
    if topic.startswith("orderbook."):
        d = _dict(m.get("data"), "data")
        symbol = _str(d.get("s"), "s")
        u = _int(d.get("u"), "u")
        seq = Seq(u, u, reset=m.get("type") == "snapshot" or u == 1)
        return Parsed(Kind.DATA, (Item(f"orderbook:{symbol}", symbol, ts, seq),))
    return CONTROL


# ---------------------------------------------------------------- Bitstamp v2
# {event: trade, channel: live_trades_btcusd, data: {id, timestamp, microtimestamp,
# amount, price, ...}}; acks bts:subscription_succeeded; our bts:heartbeat is answered
# with {event: bts:heartbeat, data: {status: success}}; bts:request_reconnect asks us to
# reconnect (handled as a server close by the runner: the venue says so).


def bitstamp(msg: Any) -> Parsed:
    m = _dict(msg, "message")
    event = m.get("event")
    if event == "bts:heartbeat":
        return HEARTBEAT
    if event != "trade":
        return CONTROL
    channel = _str(m.get("channel"), "channel")
    symbol = channel.removeprefix("live_trades_")
    d = _dict(m.get("data"), "data")
    at = _num(d.get("microtimestamp"), "microtimestamp") / 1e6
    return Parsed(Kind.DATA, (Item(f"trade:{symbol}", symbol, at, None, _num(d.get("price"), "price")),))


Rule = Callable[[Any], Parsed]


def guarded(rule: Rule) -> Rule:
    """The rule, with a shape it cannot read turned into a `malformed` Parsed."""

    def read(msg: Any) -> Parsed:
        try:
            return rule(msg)
        except Malformed as e:
            return _malformed(str(e))
        except (KeyError, TypeError, IndexError, AttributeError):
            return _malformed("unexpected shape")

    return read


RULES: dict[Venue, Rule] = {
    Venue.BINANCE: guarded(binance),
    Venue.COINBASE: guarded(coinbase),
    Venue.KRAKEN: guarded(kraken),
    Venue.OKX: guarded(okx),
    Venue.BYBIT: guarded(bybit),
    Venue.BITSTAMP: guarded(bitstamp),
}


@dataclass(frozen=True)
class Keepalive:
    """What the client sends to keep a venue's connection alive, and how often. None:
    the venue pings us (protocol pings, answered by aiohttp) or sends heartbeats."""

    text: str | None
    interval: float


# OKX: send "ping" when nothing arrived for < 30 s; Bybit: {"op": "ping"} every 20 s;
# Bitstamp: bts:heartbeat (optional, keeps the heartbeat reply flowing on quiet books).
KEEPALIVE: dict[Venue, Keepalive] = {
    Venue.BINANCE: Keepalive(None, 20.0),
    Venue.COINBASE: Keepalive(None, 20.0),
    Venue.KRAKEN: Keepalive(None, 20.0),
    Venue.OKX: Keepalive("ping", 20.0),
    Venue.BYBIT: Keepalive('{"op": "ping"}', 20.0),
    Venue.BITSTAMP: Keepalive('{"event": "bts:heartbeat"}', 20.0),
}


def asks_reconnect(venue: Venue, msg: Any) -> bool:
    """The venue asked us to reconnect (Bitstamp's bts:request_reconnect)."""
    return venue is Venue.BITSTAMP and isinstance(msg, dict) and msg.get("event") == "bts:request_reconnect"
