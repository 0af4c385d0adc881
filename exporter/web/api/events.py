"""The WebSocket hub: `/ws/live`, `/ws` and `/ws/master`.

Fed by the exporter's listeners (one call per `ProbeResult`, on the event loop) and by two
periodic tasks (status_update, ping). Every client has a bounded queue and its own writer
task: publishing never awaits, so a client that does not read only loses its own oldest
messages (counted in `crypto_api_exporter_websocket_dropped_messages_total`) and never
delays the probe loop or the other clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ...model import ProbeResult, ProviderStatus
from ...state import State
from .errors import ApiError, error_body
from .instrument import ApiMetrics
from .views import RATE_LIMIT_CRITICAL, RATE_LIMIT_WARNING, iso, log_entry, ms, provider_latency, quota_percentage, status_counts, system_health

log = structlog.get_logger()

STATUS_UPDATE = "status_update"
NEW_LOG_ENTRY = "new_log_entry"
RATE_LIMIT_ALERT = "rate_limit_alert"
PROVIDER_STATUS_CHANGE = "provider_status_change"
PING = "ping"
EVENT_TYPES = (STATUS_UPDATE, NEW_LOG_ENTRY, RATE_LIMIT_ALERT, PROVIDER_STATUS_CHANGE, PING)
# Replies to one client, always delivered whatever it subscribed to.
CONTROL_TYPES = ("connection_established", "subscribed", "pong", "error")
DEFAULT_QUEUE_SIZE = 256
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    timestamp: float

    def text(self) -> str:
        return json.dumps({"type": self.type, "data": self.data, "timestamp": iso(self.timestamp)}, separators=(",", ":"))


def parse_types(raw: Any, where: str = "types") -> frozenset[str]:
    """A list (or comma-separated string) of event types; ApiError naming a wrong one."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ApiError(400, f"{where}: must be a list of message types ({', '.join(EVENT_TYPES)})", where)
    types = {t.strip() for t in items if t.strip()}
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise ApiError(400, f"{where}: unknown message type {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})", where)
    return frozenset(types)


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[Event]
    types: frozenset[str] = frozenset(EVENT_TYPES)
    id: int = 0
    writer: asyncio.Task[None] | None = field(default=None, repr=False)

    def wants(self, event: Event) -> bool:
        return event.type in CONTROL_TYPES or event.type in self.types


class Hub:
    def __init__(
        self,
        state: State,
        metrics: ApiMetrics,
        *,
        status_interval: float = 10.0,
        ping_interval: float = 30.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.status_interval = status_interval
        self.ping_interval = ping_interval
        self.queue_size = queue_size
        self.clock = clock
        self.clients: set[Client] = set()
        self._ids = itertools.count(1)
        self._status: dict[str, ProviderStatus] = {}
        self._alerting: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ publishing

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Queue an event for every client that wants it; never awaits."""
        if not self.clients:
            return
        event = Event(type_, data, self.clock())
        self.metrics.ws_messages.labels(type_).inc()
        for client in list(self.clients):
            if client.wants(event):
                self._offer(client, event)

    def _offer(self, client: Client, event: Event) -> None:
        while True:
            try:
                client.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                dropped = client.queue.get_nowait()  # the oldest goes: the newest is the truth
                self.metrics.ws_dropped.labels(dropped.type).inc()

    def on_result(self, result: ProbeResult) -> None:
        """The exporter listener: runs after `State.record(result)`, on every probe."""
        if self.clients:  # building the entry is the costly part; skip it with nobody to send it to
            self.publish(NEW_LOG_ENTRY, log_entry(result))
        ps = self.state.providers.get(result.provider)
        if ps is not None:
            new = ps.status()
            old = self._status.get(ps.name, ProviderStatus.UNKNOWN)
            self._status[ps.name] = new
            if new is not old:
                self.publish(
                    PROVIDER_STATUS_CHANGE,
                    {
                        "provider": ps.name,
                        "category": ps.category,
                        "old_status": old.value,
                        "new_status": new.value,
                        "health_score": ps.health_score(),
                        "details": {"endpoint": result.endpoint, "outcome": result.outcome.value, "http_code": result.status_code},
                    },
                )
        for quota in result.quotas:
            key = (result.provider, quota.scope)
            pct = quota_percentage(quota)
            if pct is None or pct < RATE_LIMIT_WARNING:
                self._alerting.discard(key)
            elif key not in self._alerting:
                self._alerting.add(key)  # once per crossing; re-armed when usage drops below
                self.publish(
                    RATE_LIMIT_ALERT,
                    {
                        "provider": result.provider,
                        "scope": quota.scope,
                        "percentage": pct,
                        "limit": quota.limit,
                        "remaining": quota.remaining,
                        "reset_at": iso(quota.reset_at),
                        "severity": "critical" if pct >= RATE_LIMIT_CRITICAL else "warning",
                    },
                )

    def status_data(self) -> dict[str, Any]:
        data = status_counts(self.state)
        latencies = [d for ps in self.state.providers.values() if (d := provider_latency(ps)) is not None]
        data["avg_response_time_ms"] = ms(sum(latencies) / len(latencies)) if latencies else 0.0
        data["system_health"] = system_health(data["online"], data["total_apis"] - data["unknown"])
        data["websocket_clients"] = len(self.clients)
        return data

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._status = {name: ps.status() for name, ps in self.state.providers.items()}
        self._tasks = [
            asyncio.create_task(self._every(self.status_interval, lambda: self.publish(STATUS_UPDATE, self.status_data()))),
            asyncio.create_task(self._every(self.ping_interval, lambda: self.publish(PING, {}))),
        ]

    async def _every(self, interval: float, emit: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.clients:
                try:
                    emit()
                except Exception:  # noqa: BLE001 - a bug here must not end the loop
                    log.exception("websocket_periodic_failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.gather(*(self._close(c) for c in list(self.clients)))

    async def _close(self, client: Client) -> None:
        if client.writer is not None:
            client.writer.cancel()
        try:
            await asyncio.wait_for(client.ws.close(code=1001, message=b"server shutdown"), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            transport = client.request.transport
            if transport is not None:
                transport.abort()  # a client that stopped reading does not get a polite close

    # ------------------------------------------------------------ the endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024)
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "this is a WebSocket endpoint: connect with an Upgrade: websocket request", None)
        types = parse_types(request.query["types"]) if request.query.get("types") else frozenset(EVENT_TYPES)
        await ws.prepare(request)
        client = Client(ws, request, asyncio.Queue(self.queue_size), types, next(self._ids))
        client.writer = asyncio.create_task(self._write(client))
        self.clients.add(client)
        self.metrics.ws_clients.set(len(self.clients))
        log.info("websocket_connected", client=client.id, route=request.path, clients=len(self.clients))
        self._reply(client, "connection_established", {"client_id": client.id, "message": "Connected to Crypto API Exporter live updates", "types": sorted(types)})
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_message(client, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            self.metrics.ws_clients.set(len(self.clients))
            if client.writer is not None:
                client.writer.cancel()
            log.info("websocket_disconnected", client=client.id, clients=len(self.clients))
        return ws

    def _reply(self, client: Client, type_: str, data: dict[str, Any]) -> None:
        self._offer(client, Event(type_, data, self.clock()))

    def _on_message(self, client: Client, text: str) -> None:
        """`{"type": "subscribe" | "unsubscribe", "types": [...]}`, `ping`, `pong`."""
        try:
            msg = json.loads(text)
        except ValueError:
            self._reply(client, "error", error_body(400, "message: not valid JSON", "message"))
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        try:
            if kind == "subscribe":
                client.types = parse_types(msg["types"]) if msg.get("types") is not None else frozenset(EVENT_TYPES)
                self._reply(client, "subscribed", {"types": sorted(client.types)})
            elif kind == "unsubscribe":
                client.types = client.types - parse_types(msg.get("types", []))
                self._reply(client, "subscribed", {"types": sorted(client.types)})
            elif kind == "ping":
                self._reply(client, "pong", {})
            elif kind == "pong":
                pass
            else:
                raise ApiError(400, "type: must be subscribe, unsubscribe, ping or pong", "type")
        except ApiError as e:
            self._reply(client, "error", error_body(e.status, e.detail, e.field))

    async def _write(self, client: Client) -> None:
        try:
            while True:
                event = await client.queue.get()
                await client.ws.send_str(event.text())
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the reader loop ends too


