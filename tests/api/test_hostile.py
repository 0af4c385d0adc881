"""Hostile requests to the exporter's HTTP server (issue 9, the web side), over real
sockets on loopback: deep JSON, malformed requests carrying tokens, clients that leave
mid-request, and clients that send their request head a byte at a time.

Timeouts are the real mechanism with shorter bounds (`serve(head_timeout=...)`), so the
slow-client tests take about a second of wall clock each, not the production 10 s."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from exporter import limits, logs
from exporter.logs import configure_logging
from exporter.redact import Redactor
from exporter.web.protocol import INTERNALS

from .conftest import TOKEN, ApiHarness, StartApi

GUARD = 10.0  # only so that a broken server fails the test instead of hanging it
CANARY = "canary-api-token-3c9d71e5a2"  # a configured API token
STRANGER = "stranger-token-8e02b4f6d1"  # a token no one configured: only "never the raw request" keeps it out
ACTIONS = ("/api/schedule/trigger", "/api/config/keys/test")


def port_of(api: ApiHarness) -> int:
    return int(api.base.rsplit(":", 1)[1])


async def exchange(port: int, *parts: bytes, pause: float = 0.0, first_answer: bool = False) -> bytes:
    """Send `parts` (with `pause` between them) on one connection and read until the server
    closes it (or, `first_answer`, until the first answer is in)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        async with asyncio.timeout(GUARD):
            if not first_answer:
                return await reader.read()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            return head + await reader.readexactly(length)
    finally:
        writer.close()


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in a byte stream (all ours carry a Content-Length)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", len(rest)))
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return out


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int = 400, field: str | None = None) -> dict[str, Any]:
    assert status == expected, (status, body)
    assert headers["content-type"].startswith("application/json"), headers
    error: dict[str, Any] = json.loads(body)
    assert set(error) == {"error", "detail", "field"}, error
    assert error["field"] == field, error
    return error


# ---------------------------------------------------------------- deep JSON


def deep(levels: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * levels + b"]" * levels
    return b'{"provider":' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("kind", ["list", "object"])
async def test_deep_json_body_is_a_400_naming_body(api: ApiHarness, path: str, kind: str) -> None:
    # As deep as fits the size bound (8,192 levels of lists, 1,260 of objects): past the
    # standard parser's recursion limit, and the depth is what is tested, not the size.
    levels = limits.API_BODY_BYTES // len(deep(1, kind))
    raw = deep(levels, kind)
    assert len(raw) <= limits.API_BODY_BYTES and levels > 1000
    error = await api.post(path, status=400, data=raw, headers={"Content-Type": "application/json"})
    assert error["field"] == "body" and f"nested deeper than {limits.API_JSON_DEPTH} levels" in error["detail"]


async def test_hundred_thousand_levels_is_a_400_too(api: ApiHarness) -> None:
    """The issue's own case: 100,000 levels. Over the size bound, so refused for its size
    before it is parsed; a chunked body (no Content-Length) is counted as it is read."""

    async def chunks() -> AsyncIterator[bytes]:
        yield deep(100_000, "list")

    for data in (deep(100_000, "list"), chunks()):
        error = await api.post("/api/schedule/trigger", status=413, data=data)
        assert error["field"] == "body"


async def test_just_within_the_depth_bound_is_parsed(api: ApiHarness) -> None:
    inner = b"[" * (limits.API_JSON_DEPTH - 1) + b"]" * (limits.API_JSON_DEPTH - 1)
    error = await api.post("/api/schedule/trigger", status=400, data=b'{"provider": ' + inner + b"}")
    assert error["field"] == "provider"  # parsed: its value is what is wrong


def ws_url(api: ApiHarness, path: str = "/ws/live") -> str:
    return api.base.replace("http://", "ws://") + path


async def next_of(ws: aiohttp.ClientWebSocketResponse, type_: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await ws.receive_str(timeout=GUARD))
        if msg["type"] == type_:
            return msg


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(deep(30_000, "list").decode(), id="30k-levels-list"),  # 60 KB: within WS_MESSAGE_BYTES
        pytest.param(deep(5_000, "object").decode(), id="5k-levels-object"),
        pytest.param('{"type": "subscribe", "types": ' + "[" * 40 + "]" * 40 + "}", id="40-levels-in-types"),
    ],
)
async def test_deep_websocket_message_gets_an_error_and_the_connection_stays(api: ApiHarness, message: str) -> None:
    assert len(message.encode()) < limits.WS_MESSAGE_BYTES
    async with api.http.ws_connect(ws_url(api)) as ws:
        await next_of(ws, "connection_established")
        await ws.send_str(message)
        error = await next_of(ws, "error")
        assert error["data"]["field"] == "message" and f"deeper than {limits.API_JSON_DEPTH}" in error["data"]["detail"]
        await ws.send_json({"type": "ping"})
        assert (await next_of(ws, "pong"))["type"] == "pong"
        assert not ws.closed


async def test_binary_websocket_frame_gets_an_error(api: ApiHarness) -> None:
    async with api.http.ws_connect(ws_url(api)) as ws:
        await next_of(ws, "connection_established")
        await ws.send_bytes(b'{"type": "ping"}')
        error = await next_of(ws, "error")
        assert error["data"]["field"] == "message" and "text frame" in error["data"]["detail"]
        await ws.send_json({"type": "ping"})
        await next_of(ws, "pong")


async def test_websocket_message_over_the_size_bound_closes_with_1009(api: ApiHarness) -> None:
    async with api.http.ws_connect(ws_url(api)) as ws:
        await next_of(ws, "connection_established")
        await ws.send_str(" " * (limits.WS_MESSAGE_BYTES + 1))
        msg = await ws.receive(timeout=GUARD)
        while msg.type is aiohttp.WSMsgType.TEXT:
            msg = await ws.receive(timeout=GUARD)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


# ---------------------------------------------------------------- aiohttp's own 4xx, and what is logged

HOST = b"Host: x\r\n"
MALFORMED: dict[str, tuple[bytes, ...]] = {
    "bad header value": (b"GET /api/status HTTP/1.1\r\n" + HOST + b"Authorization: Bearer %(t)s\r\nX-Bad: a\x01b\r\n\r\n",),
    "bad request line": (b"GET /api/status?token=%(t)s HTT/1.1\r\n" + HOST + b"\r\n",),
    "bad method": (b"G\x01T /ws/live?token=%(t)s HTTP/1.1\r\n" + HOST + b"\r\n",),
    "request line too long": (b"GET /api/status?token=%(t)s&x=" + b"a" * limits.HTTP_REQUEST_LINE_BYTES + b" HTTP/1.1\r\n" + HOST + b"\r\n",),
    "header too long": (b"GET /api/status HTTP/1.1\r\n" + HOST + b"X-API-Key: %(t)s" + b"a" * limits.HTTP_HEADER_BYTES + b"\r\n\r\n",),
    "too many headers": (b"GET /api/status HTTP/1.1\r\n" + HOST + b"X-API-Key: %(t)s\r\n" + b"X-Pad: y\r\n" * limits.HTTP_HEADERS + b"\r\n",),
    "control character in query": (b"GET /api/status?token=%(t)s\x00 HTTP/1.1\r\n" + HOST + b"\r\n",),
    "bad chunk size": (
        b"POST /api/schedule/trigger?token=%(t)s HTTP/1.1\r\n" + HOST + b"X-API-Key: %(t)s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n%(t)s\r\n0\r\n\r\n",
    ),
    "bad chunk after the head": (
        b"POST /api/schedule/trigger HTTP/1.1\r\n" + HOST + b'Authorization: Bearer %(t)s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"p\r\n',
        b"zz\r\n%(t)s\r\n0\r\n\r\n",
    ),
}
BODY_FRAMING = {"bad chunk size", "bad chunk after the head"}


def with_token(parts: tuple[bytes, ...], token: str) -> tuple[bytes, ...]:
    return tuple(p.replace(b"%(t)s", token.encode()) for p in parts)


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_requests_the_parser_refuses_get_the_json_error(api: ApiHarness, case: str) -> None:
    # An open API: the trigger route reads its body, so a chunk that breaks after the head
    # fails that read (a route that leaves its body unread has answered already: aiohttp
    # reads on for at most HTTP_LINGER_SECONDS, then closes).
    data = await exchange(port_of(api), *with_token(MALFORMED[case], STRANGER), pause=0.1)
    answers = responses(data)
    assert len(answers) == 1, answers  # one answer, then the connection is closed
    status, headers, body = answers[0]
    error = assert_json_error(status, headers, body, field="body" if case in BODY_FRAMING else None)
    assert error["error"] == "bad_request"
    assert STRANGER.encode() not in data  # never echoed


@pytest.fixture
def json_logging() -> Iterator[Callable[[str, Redactor], None]]:
    """Configure the production logging (JSON lines on stderr) for one test, then put the
    test-wide configuration and the root logger's handlers back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(level_name: str, redactor: Redactor) -> None:
        root.handlers[:] = []  # as in a real process: pytest's capture handlers are not there
        configure_logging(level_name, "json", redactor)
        # Module-level loggers would otherwise keep this configuration after the test.
        structlog.configure(cache_logger_on_first_use=False)

    yield configure
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_no_token_in_any_log_line(start_api: StartApi, json_logging: Callable[[str, Redactor], None], capfd: pytest.CaptureFixture[str]) -> None:
    """Real malformed requests carrying a configured token and a stranger's: the log has one
    structured line per refused request, and neither token, anywhere; the standard
    library's records (aiohttp's, asyncio's) are JSON lines and redacted too."""
    redactor = Redactor()
    json_logging("DEBUG", redactor)
    api = await start_api(env={"API_TOKENS": CANARY}, redactor=redactor)
    for parts in MALFORMED.values():
        for token in (CANARY, STRANGER):
            # The first answer only: with the stranger's token the trigger route answers 401
            # without reading its body, and aiohttp lingers over the rest (up to 10 s).
            await exchange(port_of(api), *with_token(parts, token), pause=0.05, first_answer=True)
    logging.getLogger("aiohttp.server").error("Error handling request: %s", f"Authorization: Bearer {CANARY}")
    logs.flush()
    err = capfd.readouterr().err
    assert CANARY not in err and STRANGER not in err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is one JSON object
    refused = [line for line in lines if line["event"] == "http_bad_request"]
    # All but one: with the stranger's token, the chunk that breaks after the head comes
    # after the 401, while aiohttp drops the unread body; nothing is left to answer or log.
    assert len(refused) == 2 * len(MALFORMED) - 1, [line["error"] for line in refused]
    for line in refused:
        assert line["status"] == 400 and line["remote"] == "127.0.0.1" and line["error"]
        assert set(line) <= {"event", "level", "timestamp", "status", "error", "route", "remote"}
    assert {line["route"] for line in refused} == {None, "/api/schedule/trigger"}  # a route once one was matched
    stdlib = [line for line in lines if line.get("logger") == "aiohttp.server"]
    assert [line["event"] for line in stdlib] == ["Error handling request: Authorization: Bearer ***"]


async def test_a_body_that_breaks_ends_the_connection_with_its_answer(api: ApiHarness) -> None:
    """A chunk that breaks after the head (found by the fuzz suite): the parser is done with
    the connection, so the answer says Connection: close (it used to promise keep-alive,
    then the connection dropped) and no 'Unhandled exception' is logged."""
    head = b'POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"p\r\n'
    with structlog.testing.capture_logs() as events:
        data = await exchange(port_of(api), head, b"zz\r\nabc\r\n0\r\n\r\n", pause=0.1)  # reads until the server closes
    [(status, headers, body)] = responses(data)
    assert headers["connection"].lower() == "close"
    assert_json_error(status, headers, body, 400, "body")
    assert [e["event"] for e in events if e["log_level"] in ("error", "critical")] == []
    assert [e["route"] for e in events if e["event"] == "http_bad_request"] == ["/api/schedule/trigger"]


@functools.cache
def gzip_bomb(inflated_mib: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(z.compress(bytes(1 << 20)) for _ in range(inflated_mib)) + z.flush()


@pytest.mark.parametrize(("declared", "status"), [(True, b"413"), (False, b"415")], ids=["content-length", "chunked"])
async def test_a_compressed_body_is_refused_and_never_inflated(api: ApiHarness, declared: bool, status: bytes) -> None:
    """A gzip bomb (512 MiB inflated from 0.5 MB): refused at once (for its declared size,
    or for its encoding when chunked), and the server does not inflate the rest while it
    reads it to drop it (it used to: seconds of CPU, the event loop stalled). The server
    runs in this process: its CPU time is this process's."""
    bomb = gzip_bomb(512)
    framing = (
        b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb) if declared else b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(bomb), bomb)
    )
    cpu = time.process_time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(api))
    writer.write(b"POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n" + framing)
    async with asyncio.timeout(GUARD):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" ")
    slowest, window = 0.0, time.monotonic() + 1.5
    while time.monotonic() < window:  # while the server reads the rest of the bomb to drop it
        started = time.monotonic()
        await api.get("/healthz")
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu
    writer.close()
    assert slowest < 0.5 and cpu < 1.0, (slowest, cpu)


# ---------------------------------------------------------------- clients that leave, and slow ones


def trigger_labels(code: str) -> dict[str, str]:
    return {"http_request_method": "POST", "http_route": "/api/schedule/trigger", "http_response_status_code": code}


async def test_client_leaving_mid_request_is_a_499_not_a_failure(api: ApiHarness) -> None:
    with structlog.testing.capture_logs() as events:
        _, writer = await asyncio.open_connection("127.0.0.1", port_of(api))
        writer.write(b"POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(0.2)  # the handler is reading the body
        writer.close()
        async with asyncio.timeout(GUARD):  # the server notices the close on its next read
            while True:
                if await api.sample("http_server_request_duration_seconds_count", **trigger_labels("499")) == 1:
                    break
                await asyncio.sleep(0.05)
    assert await api.sample("http_server_request_duration_seconds_count", **trigger_labels("500")) is None
    names = [e["event"] for e in events]
    assert "client_disconnected" in names and "api_handler_failed" not in names
    assert next(e for e in events if e["event"] == "client_disconnected")["log_level"] == "debug"


async def test_body_sent_too_slowly_is_a_408(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "API_BODY_SECONDS", 0.3)
    started = time.monotonic()
    # The answer comes at the bound; aiohttp then reads on for at most HTTP_LINGER_SECONDS
    # (a body can still arrive) before it closes the connection.
    data = await exchange(port_of(api), b"POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{", first_answer=True)
    [(status, headers, body)] = responses(data)
    assert_json_error(status, headers, body, 408, "body")
    assert 0.3 <= time.monotonic() - started < 2.0


async def slow_client(port: int, head: bytes, drip: float) -> float:
    """Connect, send `head`, then a byte every `drip` seconds (none if `drip` is 0) until
    the server closes; seconds from connecting to the close."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def dripping() -> None:
        while drip:
            await asyncio.sleep(drip)
            writer.write(b"a")

    task = asyncio.create_task(dripping())
    try:
        async with asyncio.timeout(GUARD):
            assert await reader.read() == b""  # closed without an answer
    except ConnectionResetError:
        pass
    finally:
        task.cancel()
        writer.close()
    return time.monotonic() - started


async def test_slow_request_heads_are_cut_off_while_others_are_served(start_api: StartApi) -> None:
    bound, slow, silent = 1.0, 100, 20
    api = await start_api(head_timeout=bound)
    port = port_of(api)
    clients = [asyncio.create_task(slow_client(port, b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: ", 0.05)) for _ in range(slow)]
    clients += [asyncio.create_task(slow_client(port, b"", 0)) for _ in range(silent)]
    served: list[float] = []
    while not all(c.done() for c in clients):
        t = time.monotonic()
        await api.get("/api/status")
        served.append(time.monotonic() - t)
        await asyncio.sleep(0.05)
    closed = [c.result() for c in clients]
    print(f"\n{slow} slow + {silent} silent heads, bound {bound} s: closed after {min(closed):.3f}-{max(closed):.3f} s; "
          f"{len(served)} normal requests meanwhile, slowest {max(served) * 1000:.1f} ms")  # fmt: skip
    assert all(bound - 0.05 <= t <= bound + 1.0 for t in closed), sorted(closed)
    assert len(served) >= 5 and max(served) < 0.5


async def test_keep_alive_idle_is_not_a_slow_head(start_api: StartApi) -> None:
    """A kept-alive connection may idle past the head bound (up to the keep-alive one); the
    head bound starts with the first byte of its next request."""
    head, keepalive = 0.5, 1.5
    api = await start_api(head_timeout=head, keepalive_timeout=keepalive)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    async def answer(reader: asyncio.StreamReader) -> bytes:
        async with asyncio.timeout(GUARD):
            head_ = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head_.split(b"\r\n") if line.lower().startswith(b"content-length"))
            return head_ + await reader.readexactly(length)

    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(api))
    writer.write(request)
    assert b" 200 " in await answer(reader)
    await asyncio.sleep(head * 1.6)  # idle past the head bound
    writer.write(request)
    assert b" 200 " in await answer(reader)  # still open, served
    idle_from = time.monotonic()
    async with asyncio.timeout(GUARD):
        assert await reader.read() == b""
    assert keepalive - 0.05 <= time.monotonic() - idle_from <= keepalive + 1.0
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(api))
    writer.write(request)
    assert b" 200 " in await answer(reader)
    writer.write(b"G")  # the next head starts, and stalls
    started = time.monotonic()
    async with asyncio.timeout(GUARD):
        assert await reader.read() == b""
    assert head - 0.05 <= time.monotonic() - started <= head + 1.0
    writer.close()


def test_the_request_handler_internals_used_are_there() -> None:
    """protocol.py reads these attributes of aiohttp's RequestHandler; an upgrade that drops
    one must fail here, not silently lose the request-head bound."""
    assert set(INTERNALS) <= set(web.RequestHandler.__slots__)


async def test_tokens_are_secrets_of_the_redactor(start_api: StartApi) -> None:
    redactor = Redactor()
    api = await start_api(env={"API_TOKENS": f"{TOKEN},{CANARY}"}, redactor=redactor)
    assert redactor.redact(f"Bearer {CANARY} and {TOKEN}") == "Bearer *** and ***"
    assert api.exporter.reload() == []  # a reload replaces the providers' keys, not the tokens
    assert redactor.redact(CANARY) == "***"
