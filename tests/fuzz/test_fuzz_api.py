"""Mutated requests through every JSON API route, and mutated messages through the
WebSocket hub: never a 5xx, every 4xx the API's JSON error (`error`, `detail`, `field`),
never a handler failure logged; on a WebSocket an `error` reply for a bad message and the
connection kept, except past the size bound (closed with 1009).

One exporter (with the simulator, the API open, actions on, the scheduler's jobs applied
but not started, so a trigger names jobs without running them) serves every case, on a
private event loop in this thread. Requests go over a raw socket: the query string, the
body and its framing are whatever the case says, bytes the HTTP client would refuse to
send included. A fixed seed and budget (see conftest.py); a failure names its seed."""

from __future__ import annotations

import asyncio
import collections
import gzip
import json
import random
import typing
import urllib.parse
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
import structlog
from hypothesis import given

from exporter import limits, safejson
from exporter.app import build_app
from exporter.web.api import ROUTES, ApiOptions, ApiSettings
from exporter.web.api.models import EVENT_TYPES, ErrorCode
from exporter.web.server import WebOptions, serve
from tests.harness import simulated_exporter

from .conftest import SEEDS, fuzz_settings

T = TypeVar("T")
GUARD = 10.0  # seconds for one case: only so that a hang fails instead of blocking the run
ERROR_CODES = frozenset(typing.get_args(ErrorCode))
FAILED_EVENTS = frozenset({"api_handler_failed", "http_request_failed", "websocket_message_failed"})
JSON_ROUTES = [op for op in ROUTES if op.path.startswith("/api/")]
POSTS = [op for op in JSON_ROUTES if op.method == "POST"]
STATS: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


class Served:
    """The exporter on loopback, driven from synchronous Hypothesis tests: each case runs
    on the private loop with `run`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._stop: list[Any] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, GUARD))

    async def start(self) -> None:
        sim, exporter = await simulated_exporter()
        # Periodic messages far apart: every WebSocket message a case reads answers its own.
        options = ApiOptions(
            settings=ApiSettings(), status_interval=3600, ping_interval=3600, history_interval=3600, market_data_interval=3600, enable_actions=True
        )
        runner, self.port = await serve(build_app(exporter, WebOptions(api=options), handle_sighup=False, schedule=False), "127.0.0.1", 0)
        exporter.scheduler.apply(exporter.config)  # jobs to trigger, not started
        for provider in ("binance", "etherscan", "coinmarketcap"):
            for ep in exporter.config.provider(provider).endpoints:
                await exporter.run_probe(provider, ep.name)
        self._stop = [runner.cleanup, sim.stop]

    async def stop(self) -> None:
        await self._drop()
        for stop in self._stop:
            await stop()

    async def _drop(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None

    async def exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request on the kept-alive connection (a new one after the server closed it)."""
        if self._conn is None:
            self._conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._conn
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            version, status = lines[0].split(" ", 2)[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers["content-length"]))
        except BaseException:
            await self._drop()
            raise
        # The server keeps HTTP/1.1 connections only (a raw CRLF in the query can make the
        # request line HTTP/0.9: answered, then closed).
        if headers.get("connection", "").lower() == "close" or version != "HTTP/1.1":
            await self._drop()
        return int(status), headers, body


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served()
    server.run(server.start())
    yield server
    server.run(server.stop())
    server.loop.close()
    for target, counts in STATS.items():
        print(f"\n{target}: {sum(counts.values())} cases, {dict(sorted(counts.items()))}")


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """Log events of the exporter while the test runs, to find handler failures in."""
    with structlog.testing.capture_logs() as events:
        yield events


def check_answer(status: int, headers: dict[str, str], body: bytes, events: list[dict[str, Any]], case: str) -> None:
    assert status < 500, (status, body, case)
    assert headers.get("content-type", "").startswith("application/json"), (headers, case)
    doc = json.loads(body)
    if status >= 400:
        assert isinstance(doc, dict) and set(doc) == {"error", "detail", "field"}, (doc, case)
        assert doc["error"] in ERROR_CODES and isinstance(doc["detail"], str) and (doc["field"] is None or isinstance(doc["field"], str)), (doc, case)
    failed = [e for e in events if e["event"] in FAILED_EVENTS]
    assert not failed, (failed, case)
    events.clear()


def request(method: str, target: bytes, body: bytes | None = None, headers: list[bytes] | None = None) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *(headers or [])]
    if body is not None and not any(h.lower().startswith(b"transfer-encoding") for h in headers or []):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


# ---------------------------------------------------------------- query strings

NAMES = ["page", "per_page", "provider", "endpoint", "outcome", "status", "category", "search", "limit", "hours", "types", "token",
         "", "a[]", "__proto__", "PAGE", "provider ", "%00", "page%00", "p%61ge"]  # fmt: skip
VALUES = ["", " ", "0", "-1", "1", "2", "3", "200", "201", "1000", "1001", "100000", "100001", "999999999999", "9" * 40, "1e3", "1.5", "0x10",
          "NaN", "inf", "true", "null", "[]", "{}", "binance", "etherscan", "coinmarketcap", "ping", "gas_oracle", "btc_ticker", "nope",
          "success", "server_error", "online", "offline", "market_data", "MARKET_DATA", "Exchanges", "status_update", "a" * 199, "a" * 201,
          "é", "\u202e", "\U0001f600", "%00", "%ff", "%fe%ff", "%c3", "%", "%zz", "%2", "+", "%20", "..%2f..", "/", "?", "#", "&", "=", ";",
          "'", '"', "<script>", "${jndi:x}", "%25", "%u0000", "\\", "\x00", "\x7f", "\t", " x", "x\r\nX-Injected: 1"]  # fmt: skip


def query_value(rng: random.Random) -> bytes:
    value = rng.choice(VALUES)
    if rng.random() < 0.2:
        value = value * rng.randint(2, 50)
    style = rng.random()
    if style < 0.45:
        return urllib.parse.quote(value, safe="%").encode()  # as a client would send it (our escapes kept)
    if style < 0.9:
        return value.encode("utf-8", "surrogatepass")  # raw: spaces, controls, non-ASCII bytes in the request line
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))


def query_string(rng: random.Random, names: list[str]) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 6)):
        name = (rng.choice(names) if names and rng.random() < 0.7 else rng.choice(NAMES)).encode()
        form = rng.random()
        parts.append(name if form < 0.1 else b"=" + query_value(rng) if form < 0.15 else name + b"=" + query_value(rng))
    return rng.choice([b"&", b"&", b"&", b";", b"&&"]).join(parts)


@fuzz_settings(max_examples=3000)
@given(seed=SEEDS)
def test_query_strings_through_every_json_route(served: Served, failures: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    op = rng.choice(JSON_ROUTES)
    target = op.path.encode() + b"?" + query_string(rng, [p.name for p in op.params])
    body = b"{}" if op.method == "POST" and rng.random() < 0.5 else None
    status, headers, answer = served.run(served.exchange(request(op.method, target, body)))
    STATS["query strings"][str(status)] += 1
    check_answer(status, headers, answer, failures, f"{op.method} {target!r}")


# ---------------------------------------------------------------- request bodies

SCALARS = ["null", "true", "false", "0", "-0", "1", "-1", "1.5", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 30, "9" * 5000,
           '""', '" "', '"binance"', '"etherscan"', '"coinmarketcap"', '"kraken"', '"ping"', '"gas_oracle"', '"btc_ticker"', '"nope"',
           '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"é"', '"\U0001f600"', '"' + "a" * 300 + '"', '"a\\nb"', '"%00"', '"binance\\t"']  # fmt: skip
KEYS = ['"provider"', '"endpoint"', '"provider"', '"endpoint"', '"types"', '""', '"\\u0000"', '"__proto__"', '"Provider"', '"provider "', '"\\ud800"']
JUNK = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u", b"\\ud800", b"1e", b"-", b" " * 100, b"\r\n"]


def json_text(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 6 or r < 0.45:
        return rng.choice(SCALARS)
    items = range(rng.randint(0, 4))
    if r < 0.8:
        return "{" + ",".join(f"{rng.choice(KEYS)}:{json_text(rng, depth + 1)}" for _ in items) + "}"
    return "[" + ",".join(json_text(rng, depth + 1) for _ in items) + "]"


def deep_text(rng: random.Random) -> str:
    levels = rng.choice([limits.API_JSON_DEPTH - 1, limits.API_JSON_DEPTH, limits.API_JSON_DEPTH + 1, 200, 1_100, 5_000])
    if rng.random() < 0.5:
        return "[" * levels + "]" * levels
    return '{"provider":' * levels + "1" + "}" * levels


def body_text(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.5:  # close to what the routes take: an object with their fields
        fields = [f"{rng.choice(KEYS[:4])}:{json_text(rng, 5) if rng.random() < 0.5 else rng.choice(SCALARS[16:26])}" for _ in range(rng.randint(0, 3))]
        text = "{" + ",".join(fields) + "}"
    elif r < 0.85:
        text = json_text(rng)
    else:
        text = deep_text(rng)
    raw = text.encode("utf-8", "surrogatepass")
    for _ in range(rng.randint(0, 3) if rng.random() < 0.35 else 0):  # byte-level damage
        i = rng.randrange(len(raw) + 1)
        j = min(len(raw), i + rng.randint(1, 20))
        op = rng.random()
        raw = raw[:i] + raw[j:] if op < 0.3 else raw[:j] + raw[i:j] + raw[j:] if op < 0.5 else raw[:i] if op < 0.6 else raw[:i] + rng.choice(JUNK) + raw[i:]
    if rng.random() < 0.04:
        raw += b" " * (limits.API_BODY_BYTES + 1 - len(raw))  # over the size bound
    return raw


def framed(rng: random.Random, raw: bytes) -> tuple[bytes, list[bytes]]:
    """The body as sent, and its headers: a Content-Length, chunks, or gzip (sound or not)."""
    headers = [
        rng.choice([b"Content-Type: application/json", b"Content-Type: text/plain", b"Content-Type: application/json; charset=latin-1", b"X-No-Type: 1"])
    ]
    r = rng.random()
    if r < 0.15:
        packed = gzip.compress(raw, compresslevel=1)
        if rng.random() < 0.4:
            packed = packed[: rng.randrange(len(packed))] if rng.random() < 0.5 else packed[:10] + bytes(rng.randrange(256) for _ in range(8)) + packed[18:]
        return packed, [*headers, b"Content-Encoding: gzip"]
    if r < 0.35:
        chunks, i = [], 0
        while i < len(raw):
            n = rng.randint(1, 64)
            chunks.append(b"%x\r\n%s\r\n" % (len(raw[i : i + n]), raw[i : i + n]))
            i += n
        tail = b"0\r\n\r\n" if rng.random() < 0.9 else rng.choice([b"zz\r\n", b"3\r\nab\r\n0\r\n\r\n", b"-1\r\n\r\n"])
        return b"".join(chunks) + tail, [*headers, b"Transfer-Encoding: chunked"]
    return raw, headers


@fuzz_settings(max_examples=3000)
@given(seed=SEEDS)
def test_request_bodies_through_the_post_routes(served: Served, failures: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    op = rng.choice(POSTS)
    body, headers = framed(rng, body_text(rng))
    chunked = b"Transfer-Encoding: chunked" in headers
    raw = request("POST", op.path.encode(), b"" if chunked else body, headers)
    if chunked:
        raw += body
    status, answer_headers, answer = served.run(served.exchange(raw))
    STATS["request bodies"][str(status)] += 1
    check_answer(status, answer_headers, answer, failures, f"POST {op.path} {body[:200]!r}")


# ---------------------------------------------------------------- WebSocket messages

TYPE_VALUES: list[Any] = ["subscribe", "unsubscribe", "ping", "pong", "", "SUBSCRIBE", "error", "status_update", "x" * 500, 1, None, [], {}, True]
TYPES_VALUES: list[Any] = [
    list(EVENT_TYPES), ["status_update"], ["ping", "new_log_entry"], ["nonsense"], ["status_update", 1], [None], [[]], [], "", "status_update,ping",
    "status_update, nope", ",", None, {}, 5, 1.5, True, ["\u0000"], ["\ud800"], ["status_update"] * 1000,
]  # fmt: skip


def ws_message(rng: random.Random) -> str | bytes:
    r = rng.random()
    if r < 0.45:
        msg: dict[str, Any] = {"type": rng.choice(TYPE_VALUES)} if rng.random() < 0.9 else {}
        if rng.random() < 0.7:
            msg["types"] = rng.choice(TYPES_VALUES)
        if rng.random() < 0.1:
            msg[rng.choice(["data", "id", "", "types "])] = rng.choice(TYPES_VALUES)
        text = json.dumps(msg, ensure_ascii=rng.random() < 0.5)
        if not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text):
            text = json.dumps(msg)  # a text frame is UTF-8: a lone surrogate goes escaped
    elif r < 0.7:
        text = json_text(rng)
    elif r < 0.8:
        text = deep_text(rng)
    elif r < 0.9:
        text = rng.choice(["", " ", "ping", "{", "}", "null", '"ping"', '{"type": "ping"', "\u0000", "[" * 10, "9" * 5000])
    elif r < 0.97:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    else:
        return "x" * (limits.WS_MESSAGE_BYTES + 1)  # over the size bound: the one case that closes
    if rng.random() < 0.2 and text:  # text-level damage (the frame stays valid UTF-8)
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(["", "{", "]", '"', ",", "\\", "\\u12", "é"]) + text[i + rng.randint(0, 5) :]
    return text


def is_ping(message: str | bytes) -> bool:
    """Whether the hub answers `message` with a pong (read as the hub reads it)."""
    try:
        msg = safejson.loads(message, max_depth=limits.API_JSON_DEPTH) if isinstance(message, str) else None
    except safejson.JsonError:
        return False
    return isinstance(msg, dict) and msg.get("type") == "ping"


class Hub:
    """One client of /ws/live, reconnected when a case closes it."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reconnects = 0

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        if self.ws is None or self.ws.closed:
            self.ws = await self.session.ws_connect(f"http://127.0.0.1:{self.served.port}/ws/live")
            assert json.loads(await self.ws.receive_str())["type"] == "connection_established"
            self.reconnects += 1
        return self.ws

    async def send(self, message: str | bytes) -> list[dict[str, Any]]:
        """Send `message`, then a ping: the replies up to its pong (the hub answers in order)."""
        ws = await self.connect()
        await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        if isinstance(message, str) and len(message.encode()) > limits.WS_MESSAGE_BYTES:
            closing = await ws.receive()
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            await ws.close()
            return [{"type": "closed at the size bound"}]
        await ws.send_str('{"type": "ping"}')
        pongs = 2 if is_ping(message) else 1
        replies = []
        while pongs:
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.TEXT, (frame, message)  # never closed for a bad message
            replies.append(json.loads(frame.data))
            pongs -= replies[-1]["type"] == "pong"
        return replies

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


@pytest.fixture(scope="module")
def hub(served: Served) -> Iterator[Hub]:
    client = Hub(served)
    yield client
    served.run(client.close())


@fuzz_settings(max_examples=3000)
@given(seed=SEEDS)
def test_websocket_messages_through_the_hub(served: Served, hub: Hub, failures: list[dict[str, Any]], seed: int) -> None:
    message = ws_message(random.Random(seed))
    replies = served.run(hub.send(message))
    answers = replies[:-1] if replies[-1]["type"] == "pong" else replies  # not the closing ping's pong
    STATS["websocket messages"][answers[0]["type"] if answers else "no reply (pong)"] += 1
    for reply in replies:
        assert reply["type"] in ("error", "subscribed", "pong", "closed at the size bound"), (reply, message)
        if reply["type"] == "error":
            error = reply["data"]
            assert set(error) == {"error", "detail", "field"} and error["error"] in ERROR_CODES and error["error"] != "internal_error", (reply, message)
    failed = [e for e in failures if e["event"] in FAILED_EVENTS]
    assert not failed, (failed, message)
    failures.clear()
