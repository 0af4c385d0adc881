"""`GET /api/feeds` and `WS /ws/market_data`: the WebSocket market-data feeds as JSON,
and the latest prices seen on feeds and probes as a stream.

/ws/market_data is the /ws/live hub (events.py) with another default subscription: the
same bounded per-client queues and writer tasks, so a slow client loses its own oldest
messages and never holds up the others or the feeds. The throttle is the publisher's
period: one `market_data` message per MARKET_DATA_INTERVAL with the prices that changed
since the last one, whatever the feeds' rate (a venue sends thousands a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ...feeds.runner import cancel
from ...feeds.state import FeedState, FeedStore
from ...state import State
from .events import Hub, TypesParam
from .models import EVENT_TYPES, Feed, FeedPrice, FeedReason, MarketPrice
from .views import iso

MARKET_DATA_INTERVAL = 1.0  # seconds between two market_data messages to a client
MARKET_TYPES = TypesParam(
    description=f"comma-separated message types to receive (default: market_data and ping): {', '.join(EVENT_TYPES)}",
    default=("market_data", "ping"),
)
# Values extracted by probes that are prices (crypto_api_value names): by name.
PRICE_WORDS = ("price", "usd")


def _quantile(feed: FeedState, q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (as histogram_quantile would
    bound it); None before any observation, +Inf past the last bucket."""
    hist = feed.lag
    if hist.count == 0:
        return None
    rank = q * hist.count
    running = 0
    for bound, n in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
        running += n
        if running >= rank:
            return bound if bound != float("inf") else None
    return None


def feed_view(f: FeedState, now: float) -> Feed:
    prices: list[FeedPrice] = [
        {"symbol": s, "price": p.price, "changed_at": iso(p.changed_at) or "", "seen_at": iso(p.seen_at) or "", "frozen": f.frozen(s, now)}
        for s, p in sorted(f.prices.items())
    ]
    reason: FeedReason | None = f.last_reason  # type: ignore[assignment]  # state.Reason's values are FeedReason's
    return {
        "provider": f.spec.provider,
        "feed": f.spec.name,
        "venue": f.spec.venue.value,
        "connected": f.connected,
        "connected_since": iso(f.connected_since),
        "messages": f.messages,
        "last_message_at": iso(f.last_message_at),
        "silent_seconds": round(now - f.last_message_at, 3) if f.last_message_at is not None else None,
        "max_silence_seconds": f.spec.max_silence,
        "sequence_gaps": f.gaps,
        "malformed_messages": f.malformed,
        "last_malformed": f.last_malformed,
        "reconnects": dict(sorted(f.reconnects.items())),
        "last_reconnect_reason": reason,
        "lag_p50_seconds": _quantile(f, 0.5),
        "lag_p99_seconds": _quantile(f, 0.99),
        "prices": prices,
    }


def feeds_view(store: FeedStore, now: float) -> list[Feed]:
    return [feed_view(f, now) for f in sorted(store, key=lambda f: f.key)]


def market_prices(store: FeedStore, state: State, now: float) -> list[MarketPrice]:
    """Every latest price: feeds' per symbol, probes' extracted values named like prices."""
    out: list[MarketPrice] = []
    for f in store:
        for symbol, p in f.prices.items():
            out.append(
                {
                    "symbol": symbol,
                    "price": p.price,
                    "source": "feed",
                    "provider": f.spec.provider,
                    "stream": f.spec.name,
                    "at": iso(p.seen_at),
                    "frozen": f.frozen(symbol, now),
                }
            )
    for ep in state.endpoints():
        last = ep.last_completed
        if last is None or not last.ok:
            continue
        for name, value in ep.values:
            if any(word in name.lower() for word in PRICE_WORDS):
                out.append(
                    {
                        "symbol": name,
                        "price": value,
                        "source": "probe",
                        "provider": ep.provider,
                        "stream": ep.name,
                        "at": iso(last.finished_at),
                        "frozen": False,
                    }
                )
    return out


class MarketDataPublisher:
    """Publishes `market_data` on the hub every `interval`, only when a client listens."""

    def __init__(
        self,
        hub: Hub,
        store: FeedStore,
        state: State,
        *,
        interval: float = MARKET_DATA_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.store = store
        self.state = state
        self.interval = interval
        self.clock = clock
        self._sent: dict[tuple[str, str, str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    def tick(self) -> None:
        listening = any("market_data" in c.types for c in self.hub.clients)
        if not listening:
            self._sent.clear()  # a client that comes later gets every price first
            return
        changed = []
        current: dict[tuple[str, str, str, str], float] = {}
        for p in market_prices(self.store, self.state, self.clock()):
            key = (p["source"], p["provider"], p["stream"], p["symbol"])
            current[key] = p["price"]
            if self._sent.get(key) != p["price"]:
                changed.append(p)
        self._sent = current  # bounded by what is configured now
        if changed:
            self.hub.publish("market_data", {"prices": changed})

    def start(self) -> None:
        # The hub's own periodic loop: it emits only while a client is connected, and a
        # bug in one tick is logged without ending the stream.
        self._task = asyncio.create_task(self.hub.every(self.interval, self.tick))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
