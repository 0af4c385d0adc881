"""Exchange WebSocket feeds for the simulator: `/ws/feeds/{venue}` speaks each venue's
message shapes (the ones exporter/feeds/venues.py reads, cited in feeds.yaml), with
faults per venue on command (`POST /control/feeds`) and in the demo's chaos.

Faults (`FeedFault`): silence while connected (heartbeats go on where the venue sends
them), server close (now, or every N seconds: a reconnect storm), sequence gaps (the
next N sequence messages each skip a number), event times falling behind, a frozen
price, malformed frames, and a flood (messages per second for a while).

The symbols are fixed per venue (BTC and ETH); subscribe messages are acknowledged in
the venue's shape but not interpreted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ..feeds.config import FeedsConfig
from ..feeds.venues import Venue

log = structlog.get_logger()

DEFAULT_PERIOD = 0.2  # seconds between two rounds of messages (one per symbol and stream)
HEARTBEAT_PERIOD = 1.0  # Kraken and Coinbase send one about every second
MAX_FLOOD_RATE = 100_000.0
MAX_FAULT_SECONDS = 3600.0
SYMBOLS: dict[Venue, tuple[str, str]] = {
    Venue.BINANCE: ("BTCUSDT", "ETHUSDT"),
    Venue.COINBASE: ("BTC-USD", "ETH-USD"),
    Venue.KRAKEN: ("BTC/USD", "ETH/USD"),
    Venue.OKX: ("BTC-USDT", "ETH-USDT"),
    Venue.BYBIT: ("BTCUSDT", "ETHUSDT"),
    Venue.BITSTAMP: ("btcusd", "ethusd"),
}
BASE_PRICE = (60_000.0, 3_000.0)


@dataclass
class FeedFault:
    """What one venue's connections do wrong; every field optional."""

    silence: bool = False
    close: bool = False  # close every open connection now (one-shot)
    close_every: float | None = None  # seconds: each connection is closed this long after it opened
    gaps: int = 0  # the next `gaps` sequence messages each skip one number
    lag_seconds: float = 0.0  # event times this far behind the wall clock
    frozen: bool = False
    malformed: int = 0  # frames of garbage to send next (one-shot)
    flood_rate: float | None = None  # messages per second while set
    period: float | None = None  # seconds between rounds (the normal rate)

    @classmethod
    def parse(cls, body: Any) -> tuple[Venue | None, FeedFault]:
        """From the control API's JSON; ValueError names the bad field."""
        if not isinstance(body, dict):
            raise ValueError("body: must be a JSON object")
        venue = body.get("venue")
        try:
            parsed_venue = Venue(venue) if venue is not None else None
        except ValueError:
            raise ValueError(f"venue: must be one of {', '.join(v.value for v in Venue)}") from None
        known = {f.name for f in fields(cls)}
        unknown = set(body) - known - {"venue"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown field")
        fault = cls()
        for name in known & set(body):
            value = body[name]
            if name in ("silence", "close", "frozen"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name}: must be true or false")
            elif name in ("gaps", "malformed"):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
                    raise ValueError(f"{name}: must be an integer from 0 to 10000")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_FAULT_SECONDS):
                raise ValueError(f"{name}: must be a number above 0 and at most {MAX_FAULT_SECONDS:.0f}")
            if name == "flood_rate" and value is not None:
                value = min(float(value), MAX_FLOOD_RATE)
            setattr(fault, name, value)
        return parsed_venue, fault


@dataclass(eq=False)
class _Conn:
    venue: Venue
    ws: web.WebSocketResponse
    opened: float
    seq: dict[str, int] = field(default_factory=dict)
    sent: int = 0


class FeedSimulator:
    def __init__(self, *, seed: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.faults: dict[Venue, FeedFault] = {}
        self.conns: set[_Conn] = set()
        self.connections: dict[Venue, int] = dict.fromkeys(Venue, 0)
        self.prices = {v: list(BASE_PRICE) for v in Venue}

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/ws/feeds/{venue}", self.handle)
        app.router.add_get("/control/feeds", self._control_list)
        app.router.add_post("/control/feeds", self._control_set)
        app.router.add_delete("/control/feeds", self._control_clear)

    # ------------------------------------------------------------ faults

    def fault(self, venue: Venue) -> FeedFault:
        return self.faults.setdefault(venue, FeedFault())

    def set_fault(self, venue: Venue | None, fault: FeedFault) -> None:
        for v in [venue] if venue else list(Venue):
            self.faults[v] = replace(fault, close=False)
            if fault.close:
                self.close_all(v)
        log.info("simulator_feed_fault_set", venue=venue.value if venue else "all", **{k: v for k, v in asdict(fault).items() if v})

    def clear(self) -> None:
        self.faults.clear()

    def close_all(self, venue: Venue) -> None:
        for conn in list(self.conns):
            if conn.venue is venue:
                asyncio.get_running_loop().create_task(conn.ws.close(code=1001, message=b"simulated server close"))

    async def _control_list(self, request: web.Request) -> web.Response:
        return web.json_response({v.value: asdict(f) for v, f in self.faults.items()} | {"connections": {v.value: n for v, n in self.connections.items()}})

    async def _control_set(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            venue, fault = FeedFault.parse(body)
        except ValueError as e:  # JSONDecodeError included
            return web.json_response({"error": str(e).split("\n")[0][:200]}, status=400)
        self.set_fault(venue, fault)
        return web.json_response({"venue": venue.value if venue else "all", **asdict(fault)})

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"cleared": True})

    async def stop(self) -> None:
        await asyncio.gather(*(c.ws.close(code=1001) for c in list(self.conns)), return_exceptions=True)

    # ------------------------------------------------------------ the venue endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            venue = Venue(request.match_info["venue"])
        except ValueError:
            raise web.HTTPNotFound(text="unknown venue") from None
        ws = web.WebSocketResponse(max_msg_size=64 * 1024, autoping=True)
        await ws.prepare(request)
        conn = _Conn(venue, ws, asyncio.get_running_loop().time())
        self.conns.add(conn)
        self.connections[venue] += 1
        writer = asyncio.create_task(self._write(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    reply = _reply(venue, msg.data)
                    if reply is not None:
                        await ws.send_str(reply)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.conns.discard(conn)
        return ws

    async def _write(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        last_heartbeat = loop.time()
        try:
            while not conn.ws.closed:
                fault = self.fault(conn.venue)
                now = loop.time()
                if fault.close_every is not None and now - conn.opened >= fault.close_every:
                    await conn.ws.close(code=1001, message=b"simulated server close")
                    return
                while fault.malformed > 0:
                    fault.malformed -= 1
                    await conn.ws.send_str(_garbage(self.rng))
                if fault.flood_rate:
                    batch = max(1, int(fault.flood_rate / 100))
                    for _ in range(batch):
                        await self._send_round(conn, fault, one=True)
                    await asyncio.sleep(batch / fault.flood_rate)
                    continue
                if not fault.silence:
                    await self._send_round(conn, fault)
                if now - last_heartbeat >= HEARTBEAT_PERIOD:
                    last_heartbeat = now
                    heartbeat = _heartbeat(conn)
                    if heartbeat is not None:
                        await conn.ws.send_str(heartbeat)
                period = fault.period or DEFAULT_PERIOD
                if fault.close_every is not None:
                    period = min(period, max(0.001, conn.opened + fault.close_every - now))
                await asyncio.sleep(period)
        except (ConnectionError, RuntimeError):
            pass  # the client went away

    async def _send_round(self, conn: _Conn, fault: FeedFault, *, one: bool = False) -> None:
        for i, symbol in enumerate(SYMBOLS[conn.venue]):
            prices = self.prices[conn.venue]
            if not fault.frozen:
                prices[i] = round(prices[i] * (1 + self.rng.uniform(-0.0005, 0.0005)), 2)
            event_ms = int((self.clock() - fault.lag_seconds) * 1000)
            for text in _messages(conn, fault, symbol, prices[i], event_ms):
                await conn.ws.send_str(text)
                conn.sent += 1
            if one:
                return


def _next(conn: _Conn, stream: str, fault: FeedFault) -> tuple[int, int]:
    """(previous, next) number of a sequence stream, skipping one if a gap is due."""
    prev = conn.seq.get(stream, 1000)
    step = 1
    if fault.gaps > 0:
        fault.gaps -= 1
        step = 2
    conn.seq[stream] = prev + step
    return prev, prev + step


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _messages(conn: _Conn, fault: FeedFault, symbol: str, price: float, ms: int) -> Iterator[str]:
    """One round for one symbol in the venue's shapes: a price message and a sequenced one."""
    d = json.dumps
    v = conn.venue
    if v is Venue.BINANCE:
        yield d({"e": "trade", "E": ms, "s": symbol, "t": conn.sent, "p": f"{price:.2f}", "q": "0.010", "T": ms, "m": True, "M": True})
        _, nxt = _next(conn, f"depth:{symbol}", fault)
        yield d({"e": "depthUpdate", "E": ms, "s": symbol, "U": nxt, "u": nxt, "b": [[f"{price - 0.5:.2f}", "1.0"]], "a": []})
    elif v is Venue.COINBASE:
        _, n = _next(conn, "connection", fault)
        ticker = {"type": "ticker", "product_id": symbol, "price": f"{price:.2f}", "best_bid": f"{price - 0.01:.2f}", "best_ask": f"{price + 0.01:.2f}"}
        yield d({"channel": "ticker", "client_id": "", "timestamp": _iso(ms), "sequence_num": n, "events": [{"type": "update", "tickers": [ticker]}]})
    elif v is Venue.KRAKEN:
        _, n = _next(conn, f"trade:{symbol}", fault)
        trade = {"symbol": symbol, "side": "buy", "price": price, "qty": 0.01, "ord_type": "market", "trade_id": n, "timestamp": _iso(ms)}
        yield d({"channel": "trade", "type": "update", "data": [trade]})
    elif v is Venue.OKX:
        arg = {"channel": "tickers", "instId": symbol}
        yield d({"arg": arg, "data": [{"instType": "SPOT", "instId": symbol, "last": f"{price:.2f}", "ts": str(ms)}]})
        _, nxt = _next(conn, f"books:{symbol}", fault)
        book = {"asks": [[f"{price + 0.1:.2f}", "1", "0", "1"]], "bids": [], "ts": str(ms), "checksum": 0, "prevSeqId": nxt - 1, "seqId": nxt}
        yield d({"arg": {"channel": "books", "instId": symbol}, "action": "update", "data": [book]})
    elif v is Venue.BYBIT:
        trade = {"T": ms, "s": symbol, "S": "Buy", "v": "0.01", "p": f"{price:.2f}", "i": str(conn.sent), "BT": False}
        yield d({"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": ms, "data": [trade]})
        _, n = _next(conn, f"orderbook:{symbol}", fault)
        book = {"s": symbol, "b": [[f"{price - 0.1:.2f}", "1"]], "a": [], "u": n, "seq": n * 10}
        yield d({"topic": f"orderbook.50.{symbol}", "type": "delta", "ts": ms, "data": book, "cts": ms})
    else:  # Bitstamp
        data = {"id": conn.sent, "timestamp": str(ms // 1000), "microtimestamp": str(ms * 1000), "amount": 0.01, "price": price, "type": 0}
        yield d({"data": data, "channel": f"live_trades_{symbol}", "event": "trade"})


def _heartbeat(conn: _Conn) -> str | None:
    if conn.venue is Venue.KRAKEN:
        return '{"channel": "heartbeat"}'
    if conn.venue is Venue.COINBASE:
        _, n = _next(conn, "connection", FeedFault())
        event = {"current_time": datetime.now(UTC).isoformat(), "heartbeat_counter": n}
        return json.dumps({"channel": "heartbeats", "client_id": "", "timestamp": _iso(int(time.time() * 1000)), "sequence_num": n, "events": [event]})
    return None


def _reply(venue: Venue, text: str) -> str | None:
    """The venue's answer to what a client sends: acks, pongs."""
    if venue is Venue.OKX and text == "ping":
        return "pong"
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    if venue is Venue.BINANCE and msg.get("method") == "SUBSCRIBE":
        return json.dumps({"result": None, "id": msg.get("id")})
    if venue is Venue.OKX and msg.get("op") == "subscribe":
        return json.dumps({"event": "subscribe", "arg": (msg.get("args") or [{}])[0], "connId": "sim"})
    if venue is Venue.BYBIT and msg.get("op") in ("subscribe", "ping"):
        op = msg["op"]
        return json.dumps({"success": True, "ret_msg": "pong" if op == "ping" else "", "conn_id": "sim", "op": op})
    if venue is Venue.KRAKEN and msg.get("method") == "subscribe":
        return json.dumps({"method": "subscribe", "result": msg.get("params", {}), "success": True})
    if venue is Venue.BITSTAMP and msg.get("event") == "bts:subscribe":
        return json.dumps({"event": "bts:subscription_succeeded", "channel": (msg.get("data") or {}).get("channel", ""), "data": {}})
    if venue is Venue.BITSTAMP and msg.get("event") == "bts:heartbeat":
        return json.dumps({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}})
    return None


def _garbage(rng: random.Random) -> str:
    # Not JSON at all: malformed for every venue's rule alike, so tests can count them.
    return rng.choice(["{not json", '{"truncated": ', "\x00\x9c<html>502 Bad Gateway</html>"])


def simulator_feeds(config: FeedsConfig, base_url: str, **timing: Any) -> FeedsConfig:
    """A copy of the feeds config whose feeds all connect to the simulator at `base_url`
    (`http://127.0.0.1:PORT`), each to its venue's endpoint; `timing` overrides FeedSpec
    fields (max_silence, backoff, ...) for demos and tests that cannot wait minutes."""
    ws = base_url.rstrip("/").replace("http", "ws", 1)
    return replace(config, feeds=tuple(replace(f, url=f"{ws}/ws/feeds/{f.venue.value}", **timing) for f in config.feeds))


# ---------------------------------------------------------------- the demo's chaos
# Each entry: a fault and how long it lasts (seconds; 0 for one-shot faults).
CHAOS: tuple[tuple[str, FeedFault, float], ...] = (
    ("silence", FeedFault(silence=True), 12.0),
    ("gaps", FeedFault(gaps=3), 0.0),
    ("lag", FeedFault(lag_seconds=12.0), 20.0),
    ("frozen", FeedFault(frozen=True), 30.0),
    ("malformed", FeedFault(malformed=5), 0.0),
    ("close", FeedFault(close=True), 0.0),
    ("flood", FeedFault(flood_rate=2000.0), 5.0),
)
# The opening round: one fault per venue, so every feed signal moves within a minute. Gaps
# go to a venue with sequence numbers (Bitstamp has none).
OPENING: dict[Venue, str] = {
    Venue.BINANCE: "gaps",
    Venue.COINBASE: "silence",
    Venue.KRAKEN: "malformed",
    Venue.OKX: "lag",
    Venue.BYBIT: "frozen",
    Venue.BITSTAMP: "close",
}
CHAOS_PERIOD = 20.0
CHAOS_SETTLE = 3.0  # seconds before the opening round: the feeds connect and their sequences start


async def run_feed_chaos(sim: FeedSimulator, rng: random.Random | None = None, period: float = CHAOS_PERIOD) -> None:
    """Rotate faults over the venues until cancelled."""
    rng = rng or random.Random()
    by_name = {name: (fault, lasts) for name, fault, lasts in CHAOS}
    loop = asyncio.get_running_loop()
    await asyncio.sleep(CHAOS_SETTLE)
    pending: list[tuple[float, Venue]] = []
    for venue, name in OPENING.items():
        fault, lasts = by_name[name]
        sim.set_fault(venue, replace(fault))
        pending.append((loop.time() + (lasts or period / 2), venue))
    venues = list(Venue)
    while True:
        await asyncio.sleep(1.0)
        now = loop.time()
        for due, venue in list(pending):
            if now >= due:
                pending.remove((due, venue))
                sim.faults.pop(venue, None)
        if not pending and rng.random() < 1.0 / period:
            venue = rng.choice(venues)
            _, fault, lasts = rng.choice(CHAOS)
            sim.set_fault(venue, replace(fault))
            pending.append((now + (lasts or period / 2), venue))
