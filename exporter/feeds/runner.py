"""One long-lived connection per feed: connect, subscribe, read, judge, reconnect.

A `FeedRunner` owns one feed's connection loop, as one task. Per connection:
- after the subscribe messages are sent the feed is `connected`;
- every text frame is parsed (safejson, bounded) and read by the venue's rule; a frame
  the rule cannot read is counted as malformed and the connection stays;
- data messages move the counters, the lag histogram, the sequence checks and prices
  in the feed's state (state.py);
- a timer fires at `last data + max_silence`: if no data came since, the connection is
  dropped with reason `silence` (heartbeats do not count: an open socket that only
  says "heartbeat" is the failure this watches for);
- every `ping_interval` the venue's keepalive is sent (OKX "ping", Bybit op ping,
  Bitstamp bts:heartbeat; protocol pings from the server are answered by aiohttp), and
  if nothing at all arrived during the interval before, the connection is dropped with
  reason `ping_timeout`.
The connection ends with one reason: silence, ping_timeout, gap (on_gap: reconnect),
closed (the venue closed it or asked us to reconnect), error (connect failure, a
protocol error, an oversized frame). Then the runner waits out the backoff and
reconnects.

Backoff: the n-th consecutive failed connection waits `min(backoff_max, initial *
2**n) * uniform(0.5, 1)` ("equal jitter": never zero, never in lockstep with other
feeds). The count resets when a connection stayed up for `stable_after`: a venue that
accepts and then drops every connection after a second is backing off too, rather
than being hammered once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import structlog
from aiohttp import WSMsgType

from .. import limits, safejson
from .config import Backoff, FeedsConfig, FeedSpec, OnGap
from .state import FeedState, FeedStore, Reason
from .venues import KEEPALIVE, RULES, Kind, asks_reconnect

log = structlog.get_logger()

CLOSE_TIMEOUT = 1.0  # seconds to wait for the venue's close frame before dropping the socket
CONNECT_TIMEOUT = 10.0
YIELD_EVERY = 64  # frames read between two yields to the event loop (~1 ms of work)


def backoff_delay(backoff: Backoff, failures: int, rng: random.Random) -> float:
    """Seconds to wait before the next connection after `failures` consecutive failures."""
    ceiling = min(backoff.max, backoff.initial * float(2 ** min(failures, 32)))
    return ceiling * rng.uniform(0.5, 1.0)


class _Drop(Exception):
    """Ends a connection with a reason (raised inside the read loop)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class FeedRunner:
    def __init__(
        self,
        spec: FeedSpec,
        state: FeedState,
        session: aiohttp.ClientSession,
        *,
        on_change: Callable[[FeedState], None] = lambda s: None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.session = session
        self.on_change = on_change
        self.wall = wall
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.rule = RULES[spec.venue]
        self.keepalive = KEEPALIVE[spec.venue].text
        self.connections = 0
        self.delays: list[float] = []  # the last backoff waits, for the API and tests (bounded)
        self._last_data = 0.0
        self._last_any = 0.0
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()  # keepalives in flight (one at a time in practice)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"feed:{self.spec.provider}/{self.spec.name}")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        for task in list(self._sends):
            task.cancel()

    async def run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            reason = await self._connection()
            up = loop.time() - started
            failures = 0 if up >= self.spec.backoff.stable_after else failures + 1
            delay = backoff_delay(self.spec.backoff, failures - 1 if failures else 0, self.rng)
            self.delays = [*self.delays[-19:], delay]
            log.info("feed_reconnecting", provider=self.spec.provider, feed=self.spec.name, reason=reason, delay=round(delay, 3), up=round(up, 3))
            await self.sleep(delay)

    async def _connection(self) -> str:
        """One connection, from connect to its end; returns why it ended."""
        spec = self.spec
        self.connections += 1
        try:
            ws = await self.session.ws_connect(
                spec.url,
                max_msg_size=limits.FEED_MESSAGE_BYTES,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
                compress=0,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            return self._ended(Reason.ERROR, f"connect failed ({type(e).__name__})")
        reason = Reason.CLOSED
        try:
            for message in spec.subscribe:
                await ws.send_str(message)
            self.state.on_connected(self.wall())
            self.on_change(self.state)
            reason = await self._read(ws)
        except (aiohttp.ClientError, ConnectionError, OSError) as e:
            reason = Reason.ERROR
            log.info("feed_error", provider=spec.provider, feed=spec.name, error=type(e).__name__)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT)
        return self._ended(reason, None)

    def _ended(self, reason: str, detail: str | None) -> str:
        self.state.on_disconnected(reason)
        self.on_change(self.state)
        if detail:
            log.info("feed_connect_failed", provider=self.spec.provider, feed=self.spec.name, detail=detail)
        return reason

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """The read loop, with the silence and keepalive watchdogs beside it."""
        loop = asyncio.get_running_loop()
        self._last_data = self._last_any = loop.time()
        reader = asyncio.create_task(self._frames(ws))
        dropped: list[str] = []

        def drop(reason: str) -> None:
            if not dropped:
                dropped.append(reason)
                reader.cancel()

        def silence_check() -> None:
            due = self._last_data + self.spec.max_silence
            if loop.time() >= due:
                drop(Reason.SILENCE)
            else:
                timers[0] = loop.call_at(due, silence_check)

        def keepalive_check(seen: float) -> None:
            if self._last_any <= seen:
                drop(Reason.PING_TIMEOUT)
                return
            if self.keepalive is not None and not ws.closed:
                self._spawn(_send(ws, self.keepalive))
            timers[1] = loop.call_later(self.spec.ping_interval, keepalive_check, loop.time())

        timers = [
            loop.call_at(self._last_data + self.spec.max_silence, silence_check),
            loop.call_later(self.spec.ping_interval, keepalive_check, loop.time()),
        ]
        if self.keepalive is not None:
            self._spawn(_send(ws, self.keepalive))
        try:
            return await reader
        except asyncio.CancelledError:
            if dropped and not _cancelling():
                return dropped[0]
            raise
        finally:
            for timer in timers:
                timer.cancel()
            reader.cancel()

    async def _frames(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        loop = asyncio.get_running_loop()
        n = 0
        try:
            async for msg in ws:
                now = loop.time()
                self._last_any = now
                n += 1
                if n % YIELD_EVERY == 0:
                    # A backlog of frames is read without suspending (aiohttp returns
                    # buffered frames at once): give probes in flight their turn.
                    await asyncio.sleep(0)
                if msg.type is WSMsgType.TEXT:
                    if self._on_text(msg.data, now):
                        return Reason.CLOSED  # the venue asked for a reconnect
                elif msg.type is WSMsgType.BINARY:
                    self._malformed("a binary frame where the venue sends text")
                elif msg.type is WSMsgType.ERROR:
                    return Reason.ERROR  # a protocol error or a frame over FEED_MESSAGE_BYTES
        except _Drop as d:
            return d.reason
        return Reason.CLOSED

    def _on_text(self, text: str, now: float) -> bool:
        try:
            # orjson's own nesting bound only: a tighter one would walk every message in
            # Python (a third of the cost per message), and the rules never recurse.
            msg = safejson.loads(text)
        except safejson.JsonError as e:
            if text.strip() != "pong":  # OKX answers our text ping with a bare "pong"
                self._malformed(str(e))
                return False
            msg = "pong"
        if asks_reconnect(self.spec.venue, msg):
            return True
        parsed = self.rule(msg)
        kind = parsed.kind
        if kind is Kind.DATA:
            self._last_data = now
            gaps = self.state.observe(parsed, self.wall())
            if gaps and self.spec.on_gap is OnGap.RECONNECT:
                raise _Drop(Reason.GAP)
        elif kind is Kind.MALFORMED:
            self._malformed(parsed.detail)
        elif parsed.items:  # heartbeats that carry the connection's sequence (Coinbase)
            gaps = self.state.observe_sequence_only(parsed)
            if gaps and self.spec.on_gap is OnGap.RECONNECT:
                raise _Drop(Reason.GAP)
        return False

    def _malformed(self, detail: str) -> None:
        self.state.malformed += 1
        self.state.last_malformed = detail[: limits.DETAIL_CHARS]
        # Debug only: a venue sending garbage at 10,000 frames/s must not flood the log;
        # the counter and /api/feeds carry it.
        log.debug("feed_malformed", provider=self.spec.provider, feed=self.spec.name, detail=detail[: limits.DETAIL_CHARS])


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a task and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _send(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    with contextlib.suppress(Exception):  # a closing socket: the read loop reports it
        await ws.send_str(text)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class FeedManager:
    """Starts, stops and reloads the runners; the composition root owns it."""

    def __init__(self, store: FeedStore, *, wall: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.store = store
        self.wall = wall
        self.rng = rng or random.Random()
        self.config = FeedsConfig()
        self.runners: dict[tuple[str, str], FeedRunner] = {}
        self._session: aiohttp.ClientSession | None = None
        self._syncing: asyncio.Task[None] | None = None

    def apply(self, config: FeedsConfig) -> None:
        """Match the config: the store first, then (if started) the runners."""
        self.config = config
        self.store.apply(config)
        if self._session is not None:
            previous = self._syncing

            async def sync() -> None:
                if previous is not None:
                    await previous  # reloads apply in order
                await self._sync()

            self._syncing = asyncio.get_running_loop().create_task(sync())

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT))
        await self._sync()

    async def _sync(self) -> None:
        if self._session is None:
            return
        wanted = {spec.key: spec for spec in self.config.feeds}
        for key in list(self.runners):
            runner = self.runners[key]
            state = self.store.feeds.get(key)
            if key not in wanted or runner.spec != wanted[key] or runner.state is not state:
                del self.runners[key]
                await runner.stop()
        for key, spec in wanted.items():
            if key not in self.runners:
                runner = FeedRunner(spec, self.store.feeds[key], self._session, on_change=self.store.changed, wall=self.wall, rng=self.rng)
                self.runners[key] = runner
                runner.start()

    async def stop(self) -> None:
        if self._syncing is not None:
            with contextlib.suppress(Exception):
                await self._syncing
        runners, self.runners = list(self.runners.values()), {}
        await asyncio.gather(*(r.stop() for r in runners))
        if self._session is not None:
            await self._session.close()
            self._session = None
