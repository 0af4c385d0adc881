"""WS /ws/live, /ws and /ws/master against a running exporter fed by the simulator."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from typing import Any

import aiohttp
import pytest

from exporter.web.api import API_KEY

from .conftest import ApiHarness, StartApi


async def collect(ws: aiohttp.ClientWebSocketResponse, until: set[str], timeout: float = 5.0) -> list[dict[str, Any]]:
    """Messages until one of each type in `until` has arrived."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until <= {m["type"] for m in seen}:
        left = deadline - time.monotonic()
        assert left > 0, f"missing {until - {m['type'] for m in seen}} after {[m['type'] for m in seen]}"
        seen.append(await ws.receive_json(timeout=left))
    return seen


def ws_url(api: ApiHarness, path: str) -> str:
    return api.base.replace("http://", "ws://") + path


async def test_live_events_after_a_fault(start_api: StartApi) -> None:
    api = await start_api(status_interval=0.1, ping_interval=0.2)
    await api.probe_all("binance")  # online before the client connects
    async with api.http.ws_connect(ws_url(api, "/ws/live")) as ws:
        hello = await ws.receive_json(timeout=2)
        assert hello["type"] == "connection_established" and hello["timestamp"].endswith("Z")
        await api.fault(provider="binance", status=503)
        for ep in ("ping", "server_time", "btc_ticker"):
            await api.probe("binance", ep)
        msgs = await collect(ws, {"status_update", "new_log_entry", "provider_status_change", "ping"})
    assert all(set(m) == {"type", "data", "timestamp"} for m in msgs)
    logs = [m["data"] for m in msgs if m["type"] == "new_log_entry"]
    assert logs[0]["provider"] == "binance" and logs[0]["status"] == "server_error" and logs[0]["http_code"] == 503
    changes = [m["data"] for m in msgs if m["type"] == "provider_status_change"]
    # The first failing endpoint makes binance degraded, the last one offline.
    assert [(c["old_status"], c["new_status"]) for c in changes] == [("online", "degraded"), ("degraded", "offline")]
    assert changes[0]["provider"] == "binance" and changes[0]["details"]["outcome"] == "server_error"
    status = next(m["data"] for m in msgs if m["type"] == "status_update")
    assert {"total_apis", "online", "degraded", "offline"} <= set(status) and status["total_apis"] == 23


async def test_rate_limit_alert_once_per_crossing(start_api: StartApi) -> None:
    api = await start_api()
    async with api.http.ws_connect(ws_url(api, "/ws?types=rate_limit_alert")) as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "connection_established"
        await api.fault(provider="binance", quota_remaining=600)  # 90 % of 6000 used
        await api.probe("binance", "ping")
        await api.probe("binance", "ping")  # still above 80 %: no second alert
        await api.clear()
        await api.probe("binance", "ping")  # back below: re-armed
        await api.fault(provider="binance", quota_remaining=100)
        await api.probe("binance", "ping")
        first = await ws.receive_json(timeout=2)
        second = await ws.receive_json(timeout=2)
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_json(timeout=0.2)
    assert first["type"] == second["type"] == "rate_limit_alert"
    assert first["data"]["provider"] == "binance" and first["data"]["scope"] == "weight_1m"
    assert first["data"]["severity"] == "warning" and 80 <= first["data"]["percentage"] < 95
    assert second["data"]["severity"] == "critical"


async def test_subscription_filters_by_type(start_api: StartApi) -> None:
    api = await start_api(status_interval=0.05, ping_interval=0.05)
    async with api.http.ws_connect(ws_url(api, "/ws/master")) as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json({"type": "subscribe", "types": ["provider_status_change"]})
        reply = await ws.receive_json(timeout=2)
        while reply["type"] != "subscribed":
            reply = await ws.receive_json(timeout=2)
        assert reply["data"]["types"] == ["provider_status_change"]
        await asyncio.sleep(0.2)  # status_update and ping would arrive now, if wanted
        await api.probe("okx", "server_time")
        msg = await ws.receive_json(timeout=2)
        assert msg["type"] == "provider_status_change" and msg["data"]["new_status"] == "online"
        await ws.send_json({"type": "subscribe", "types": ["nonsense"]})
        err = await ws.receive_json(timeout=2)
        assert err["type"] == "error" and err["data"]["field"] == "types"
        await ws.send_str("{broken")
        err = await ws.receive_json(timeout=2)
        assert err["type"] == "error" and "JSON" in err["data"]["detail"]
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2))["type"] == "pong"
        await ws.send_json({"type": "unsubscribe", "types": ["provider_status_change"]})
        assert (await ws.receive_json(timeout=2))["data"]["types"] == []


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
            blob = "x" * 10_000
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
                hub.publish("new_log_entry", {"i": i, "blob": blob})
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
