"""WS /ws/live, /ws and /ws/master against a running exporter fed by the simulator.

Every message received is checked against the documented message union (models.WsMessage,
the schema /openapi.json publishes for these routes). Periodic messages come when a test
ticks the harness's manual timer: no test waits for the wall clock."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import Any

import aiohttp
from pydantic import TypeAdapter

from exporter.model import Outcome, ProbeResult
from exporter.web.api import API_KEY
from exporter.web.api.events import LIVE_TYPES
from exporter.web.api.models import EVENT_TYPES, WsMessage
from exporter.web.api.views import log_entry

from .conftest import ApiHarness, StartApi

WS_MESSAGE: TypeAdapter[Any] = TypeAdapter(WsMessage)
TIMEOUT = 5.0  # only so that a missing message fails the test instead of hanging it


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next message, after checking it against the documented union (strict: no
    coercion, so an int where a string is documented fails)."""
    text = await ws.receive_str(timeout=TIMEOUT)
    WS_MESSAGE.validate_json(text, strict=True)
    msg: dict[str, Any] = json.loads(text)
    assert set(msg) == {"type", "data", "timestamp"}
    return msg


async def collect(ws: aiohttp.ClientWebSocketResponse, until: set[str]) -> list[dict[str, Any]]:
    """Messages until one of each type in `until` has arrived."""
    seen: list[dict[str, Any]] = []
    while not until <= {m["type"] for m in seen}:
        seen.append(await receive(ws))
    return seen


def ws_url(api: ApiHarness, path: str) -> str:
    return api.base.replace("http://", "ws://") + path


async def test_live_events_after_a_fault(start_api: StartApi) -> None:
    api = await start_api()
    await api.probe_all("binance")  # online before the client connects
    async with api.http.ws_connect(ws_url(api, "/ws/live")) as ws:
        hello = await receive(ws)
        assert hello["type"] == "connection_established" and hello["timestamp"].endswith("Z")
        assert hello["data"]["types"] == sorted(LIVE_TYPES)  # market_data has its own route
        await api.fault(provider="binance", status=503)
        for ep in ("ping", "server_time", "btc_ticker"):
            await api.probe("binance", ep)
        await api.tick_status()
        await api.tick_ping()
        msgs = await collect(ws, {"status_update", "new_log_entry", "provider_status_change", "ping"})
    logs = [m["data"] for m in msgs if m["type"] == "new_log_entry"]
    assert logs[0]["provider"] == "binance" and logs[0]["status"] == "server_error" and logs[0]["http_code"] == 503
    changes = [m["data"] for m in msgs if m["type"] == "provider_status_change"]
    # The first failing endpoint makes binance degraded, the last one offline.
    assert [(c["old_status"], c["new_status"]) for c in changes] == [("online", "degraded"), ("degraded", "offline")]
    assert changes[0]["provider"] == "binance" and changes[0]["details"]["outcome"] == "server_error"
    status = next(m["data"] for m in msgs if m["type"] == "status_update")
    assert {"total_apis", "online", "degraded", "offline"} <= set(status) and status["total_apis"] == len(api.exporter.config.providers)
    assert (status["offline"], status["websocket_clients"]) == (1, 1)
    assert [m["type"] for m in msgs][-2:] == ["status_update", "ping"]  # in the order of the ticks


async def test_rate_limit_alert_once_per_crossing(start_api: StartApi) -> None:
    api = await start_api()
    async with api.http.ws_connect(ws_url(api, "/ws?types=rate_limit_alert")) as ws:
        assert (await receive(ws))["type"] == "connection_established"
        await api.fault(provider="binance", quota_remaining=600)  # 90 % of 6000 used
        await api.probe("binance", "ping")
        await api.probe("binance", "ping")  # still above 80 %: no second alert
        await api.clear()
        await api.probe("binance", "ping")  # back below: re-armed
        await api.fault(provider="binance", quota_remaining=100)
        await api.probe("binance", "ping")
        await ws.send_json({"type": "ping"})  # answered after every message queued so far
        first, second, last = await receive(ws), await receive(ws), await receive(ws)
    assert last["type"] == "pong"  # so there was no third alert
    assert first["type"] == second["type"] == "rate_limit_alert"
    assert first["data"]["provider"] == "binance" and first["data"]["scope"] == "weight_1m"
    assert first["data"]["severity"] == "warning" and 80 <= first["data"]["percentage"] < 95
    assert second["data"]["severity"] == "critical"


async def test_subscription_filters_by_type(start_api: StartApi) -> None:
    api = await start_api()
    async with api.http.ws_connect(ws_url(api, "/ws/master")) as ws:
        assert (await receive(ws))["type"] == "connection_established"
        await ws.send_json({"type": "subscribe", "types": ["provider_status_change"]})
        reply = await receive(ws)
        assert reply["type"] == "subscribed" and reply["data"]["types"] == ["provider_status_change"]
        await api.tick_status()  # status_update and ping are published now: this client does not want them
        await api.tick_ping()
        await api.probe("okx", "server_time")
        msg = await receive(ws)  # so the first message after them is the status change
        assert msg["type"] == "provider_status_change" and msg["data"]["new_status"] == "online"
        await ws.send_json({"type": "subscribe", "types": ["nonsense"]})
        err = await receive(ws)
        assert err["type"] == "error" and err["data"]["field"] == "types"
        await ws.send_str("{broken")
        err = await receive(ws)
        assert err["type"] == "error" and "JSON" in err["data"]["detail"]
        await ws.send_json({"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
        await ws.send_json({"type": "unsubscribe", "types": ["provider_status_change"]})
        assert (await receive(ws))["data"]["types"] == []
        await ws.send_json({"type": "subscribe"})  # no types: everything again
        assert (await receive(ws))["data"]["types"] == sorted(EVENT_TYPES)


async def stalled_client(api: ApiHarness, path: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = api.base.removeprefix("http://").split(":")
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_client_that_never_reads_does_not_delay_others(start_api: StartApi) -> None:
    api = await start_api(queue_size=64)
    hub = api.app[API_KEY].hub
    stalled = await stalled_client(api, "/ws/live")
    try:
        async with api.http.ws_connect(ws_url(api, "/ws/live")) as fast:
            assert (await fast.receive_json(timeout=2))["type"] == "connection_established"
            assert len(hub.clients) == 2
            # 20 MB of events: far more than the stalled socket's buffers hold.
            entry = log_entry(ProbeResult("flood", "exchanges", "ping", Outcome.SERVER_ERROR, 0.0, 0.0, detail="x" * 10_000))
            received = 0

            async def drain() -> None:
                nonlocal received
                while received < 2000:
                    msg = await fast.receive_json(timeout=5)
                    received += msg["type"] == "new_log_entry"

            reader = asyncio.create_task(drain())
            started = time.perf_counter()
            worst = 0.0
            for i in range(2000):
                t = time.perf_counter()
                hub.publish("new_log_entry", {**entry, "attempts": i})
                worst = max(worst, time.perf_counter() - t)
                if i % 8 == 0:
                    await asyncio.sleep(0)  # let the writers run, as the probe loop would
            publishing = time.perf_counter() - started
            await asyncio.wait_for(reader, 10)
            # The probe loop keeps going: a real probe, with its event, right after the flood.
            t = time.perf_counter()
            await api.probe("binance", "ping")
            probe_time = time.perf_counter() - t
            msg = await fast.receive_json(timeout=2)
            assert msg["type"] == "new_log_entry" and msg["data"]["provider"] == "binance"
        assert received == 2000  # the reading client lost nothing
        assert worst < 0.05 and publishing < 2.0 and probe_time < 1.0
        stuck = next(c for c in hub.clients)
        assert stuck.queue.qsize() == 64  # bounded: the stalled client holds at most its queue
        text = await api.metrics_text()
        dropped = [line for line in text.splitlines() if line.startswith('crypto_api_exporter_websocket_dropped_messages_total{type="new_log_entry"}')]
        assert dropped and float(dropped[0].split()[-1]) > 1000
    finally:
        stalled.close()
