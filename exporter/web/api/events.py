"""The WebSocket hub: `/ws/live`, `/ws` and `/ws/master`.

Fed by the exporter's listeners (one call per `ProbeResult`, on the event loop) and by two
periodic tasks (status_update, ping). Every client has a bounded queue and its own writer
task: publishing never awaits, so a client that does not read only loses its own oldest
messages (counted in `crypto_api_exporter_websocket_dropped_messages_total`) and never
delays the probe loop or the other clients.

Every message's `data` is one of the typed models of models.py; `publish` takes the type
and its model together (overloads), so mypy checks that each message carries its own shape,
and the OpenAPI document describes the same models."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, overload

import structlog
from aiohttp import WSMsgType, web

from ... import limits, safejson
from ...model import ProbeResult, ProviderStatus
from ...state import State
from .errors import ApiError, error_body
from .instrument import ApiMetrics
from .models import (
    CONTROL_TYPES,
    EVENT_TYPES,
    ConnectionEstablishedData,
    ControlType,
    Empty,
    Error,
    EventType,
    LogEntry,
    MarketDataData,
    ProviderStatusChangeData,
    RateLimitAlertData,
    StatusUpdateData,
    SubscribedData,
)
from .query import Schema
from .views import (
    RATE_LIMIT_CRITICAL,
    RATE_LIMIT_WARNING,
    iso,
    log_entry,
    ms,
    provider_latency,
    quota_percentage,
    status_counts,
    system_health,
)

log = structlog.get_logger()

__all__ = ["CONTROL_TYPES", "EVENT_TYPES", "TYPES", "Client", "Event", "Hub", "parse_types"]
DEFAULT_QUEUE_SIZE = 256
CLOSE_TIMEOUT = 1.0
_KNOWN: frozenset[str] = frozenset(EVENT_TYPES)


@dataclass(frozen=True)
class Event:
    type: EventType | ControlType
    data: Mapping[str, object]  # one of the models of models.py: publish() and _reply() pair them
    timestamp: float

    def text(self) -> str:
        return json.dumps({"type": self.type, "data": self.data, "timestamp": iso(self.timestamp)}, separators=(",", ":"))


def parse_types(raw: object, where: str = "types") -> frozenset[EventType]:
    """A list (or comma-separated string) of event types; ApiError naming a wrong one."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ApiError(400, f"{where}: must be a list of message types ({', '.join(EVENT_TYPES)})", where)
    types = {t.strip() for t in items if t.strip()}
    unknown = sorted(types - _KNOWN)
    if unknown:
        raise ApiError(400, f"{where}: unknown message type {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})", where)
    return cast(frozenset[EventType], frozenset(types))  # each checked against EVENT_TYPES above


# /ws/live's default: every type but market_data, which has its own route (/ws/market_data).
LIVE_TYPES: tuple[EventType, ...] = tuple(t for t in EVENT_TYPES if t != "market_data")


@dataclass(frozen=True)
class TypesParam:
    """`?types=status_update,ping` on the WebSocket routes (a `QueryParam`)."""

    name: str = "types"
    description: str = f"comma-separated message types to receive (default: all but market_data): {', '.join(EVENT_TYPES)}"
    default: tuple[EventType, ...] = LIVE_TYPES

    def parse(self, query: Mapping[str, str]) -> frozenset[EventType]:
        raw = query.get(self.name)
        return parse_types(raw, self.name) if raw else frozenset(self.default)

    def schema(self) -> Schema:
        return {"type": "string"}


TYPES = TypesParam()


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[Event]
    types: frozenset[EventType] = frozenset(EVENT_TYPES)
    id: int = 0
    writer: asyncio.Task[None] | None = field(default=None, repr=False)

    def wants(self, event: Event) -> bool:
        return event.type in CONTROL_TYPES or event.type in self.types


class Hub:
    """`sleep` waits out one period of status_update and ping: `asyncio.sleep`, or in tests
    a timer they advance by hand."""

    def __init__(
        self,
        state: State,
        metrics: ApiMetrics,
        *,
        status_interval: float = 10.0,
        ping_interval: float = 30.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.status_interval = status_interval
        self.ping_interval = ping_interval
        self.queue_size = queue_size
        self.clock = clock
        self.sleep = sleep
        self.clients: set[Client] = set()
        self._ids = itertools.count(1)
        self._status: dict[str, ProviderStatus] = {}
        self._alerting: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ publishing

    @overload
    def publish(self, type_: Literal["status_update"], data: StatusUpdateData) -> None: ...
    @overload
    def publish(self, type_: Literal["new_log_entry"], data: LogEntry) -> None: ...
    @overload
    def publish(self, type_: Literal["rate_limit_alert"], data: RateLimitAlertData) -> None: ...
    @overload
    def publish(self, type_: Literal["provider_status_change"], data: ProviderStatusChangeData) -> None: ...
    @overload
    def publish(self, type_: Literal["ping"], data: Empty) -> None: ...
    @overload
    def publish(self, type_: Literal["market_data"], data: MarketDataData) -> None: ...
    def publish(self, type_: EventType, data: Mapping[str, object]) -> None:
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
            self.publish("new_log_entry", log_entry(result))
        ps = self.state.providers.get(result.provider)
        if ps is not None:
            new = ps.status()
            old = self._status.get(ps.name, ProviderStatus.UNKNOWN)
            self._status[ps.name] = new
            if new is not old:
                self.publish(
                    "provider_status_change",
                    {
                        "provider": ps.name,
                        "category": ps.category,
                        "old_status": old,
                        "new_status": new,
                        "health_score": ps.health_score(),
                        "details": {"endpoint": result.endpoint, "outcome": result.outcome, "http_code": result.status_code},
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
                    "rate_limit_alert",
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

    def status_data(self) -> StatusUpdateData:
        counts = status_counts(self.state)
        latencies = [d for ps in self.state.providers.values() if (d := provider_latency(ps)) is not None]
        return {
            **counts,
            "avg_response_time_ms": ms(sum(latencies) / len(latencies)) if latencies else 0.0,
            "system_health": system_health(counts["online"], counts["total_apis"] - counts["unknown"]),
            "websocket_clients": len(self.clients),
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._status = {name: ps.status() for name, ps in self.state.providers.items()}
        self._tasks = [
            asyncio.create_task(self.every(self.status_interval, lambda: self.publish("status_update", self.status_data()))),
            asyncio.create_task(self.every(self.ping_interval, lambda: self.publish("ping", {}))),
        ]

    async def every(self, interval: float, emit: Callable[[], None]) -> None:
        """Call `emit` every `interval` while clients are connected (web/api/feeds.py too)."""
        while True:
            await self.sleep(interval)
            if self.clients:
                try:
                    emit()
                except Exception:  # a bug here must not end the loop
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
        except (TimeoutError, ConnectionError, RuntimeError):
            transport = client.request.transport
            if transport is not None:
                transport.abort()  # a client that stopped reading does not get a polite close

    # ------------------------------------------------------------ the endpoint

    async def handle(self, request: web.Request, types_param: TypesParam = TYPES) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=limits.WS_MESSAGE_BYTES)
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "this is a WebSocket endpoint: connect with an Upgrade: websocket request", None)
        types = types_param.parse(request.query)
        await ws.prepare(request)
        client = Client(ws, request, asyncio.Queue(self.queue_size), types, next(self._ids))
        client.writer = asyncio.create_task(self._write(client))
        self.clients.add(client)
        self.metrics.ws_clients.set(len(self.clients))
        log.info("websocket_connected", client=client.id, route=request.path, clients=len(self.clients))
        self._reply(
            client, "connection_established", {"client_id": client.id, "message": "Connected to Crypto API Exporter live updates", "types": sorted(types)}
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_message(client, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._reply(client, "error", error_body(400, "message: must be a text frame holding a JSON object", "message"))
                elif msg.type is WSMsgType.ERROR:
                    break  # a frame over WS_MESSAGE_BYTES (closed with 1009) or a broken one
        finally:
            self.clients.discard(client)
            self.metrics.ws_clients.set(len(self.clients))
            if client.writer is not None:
                client.writer.cancel()
            log.info("websocket_disconnected", client=client.id, clients=len(self.clients))
        return ws

    @overload
    def _reply(self, client: Client, type_: Literal["connection_established"], data: ConnectionEstablishedData) -> None: ...
    @overload
    def _reply(self, client: Client, type_: Literal["subscribed"], data: SubscribedData) -> None: ...
    @overload
    def _reply(self, client: Client, type_: Literal["pong"], data: Empty) -> None: ...
    @overload
    def _reply(self, client: Client, type_: Literal["error"], data: Error) -> None: ...
    def _reply(self, client: Client, type_: ControlType, data: Mapping[str, object]) -> None:
        self._offer(client, Event(type_, data, self.clock()))

    def _on_message(self, client: Client, text: str) -> None:
        """`{"type": "subscribe" | "unsubscribe", "types": [...]}`, `ping`, `pong`. Whatever
        a client sends, it gets a reply or nothing, never a closed connection: a bad message
        is answered with an `error`, and so (logged) is a bug in handling one."""
        try:
            self._handle_message(client, text)
        except ApiError as e:
            self._reply(client, "error", error_body(e.status, e.detail, e.field))
        except Exception:  # a bug here must not end the client's connection
            log.exception("websocket_message_failed", client=client.id)
            self._reply(client, "error", error_body(500, "internal error; see the exporter's log", None))

    def _handle_message(self, client: Client, text: str) -> None:
        try:
            msg = safejson.loads(text, max_depth=limits.API_JSON_DEPTH)
        except safejson.JsonError as e:
            raise ApiError(400, f"message: not valid JSON ({e})", "message") from None
        kind = msg.get("type") if isinstance(msg, dict) else None
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

    async def _write(self, client: Client) -> None:
        try:
            while True:
                event = await client.queue.get()
                await client.ws.send_str(event.text())
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the reader loop ends too
