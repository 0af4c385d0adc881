"""What each feed has seen: counters, the lag histogram, sequence positions, latest prices.

Written only by the feed's own runner (one writer per feed, on the event loop), read by
/metrics (metrics.py), /api/feeds and /ws/market_data. Bounded: sequence streams and
symbols per feed are capped (limits.py), and a feed removed by a reload is dropped here
so its series vanish.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import limits
from ..families import FEED_LAG_BUCKETS
from ..state import Histogram
from .config import FeedsConfig, FeedSpec
from .sequence import Seq, Verdict, advance, check
from .venues import Parsed


@dataclass(slots=True)
class PricePoint:
    price: float
    seen_at: float  # wall clock of the last message carrying it
    changed_at: float  # wall clock when it last took a new value


class Reason:
    """Why a connection ended; the `reason` label (families.FEED_RECONNECT_REASONS)."""

    SILENCE = "silence"
    CLOSED = "closed"
    ERROR = "error"
    PING_TIMEOUT = "ping_timeout"
    GAP = "gap"


@dataclass(slots=True)
class FeedState:
    spec: FeedSpec
    connected: bool = False
    messages: int = 0
    malformed: int = 0
    gaps: int = 0
    last_message_at: float | None = None
    connected_since: float | None = None
    last_reason: str | None = None
    last_malformed: str | None = None
    reconnects: Counter[str] = field(default_factory=Counter)
    lag: Histogram = field(default_factory=lambda: Histogram(FEED_LAG_BUCKETS))
    sequences: dict[str, int] = field(default_factory=dict)
    prices: dict[str, PricePoint] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.key

    def frozen(self, symbol: str, now: float) -> bool:
        """The price has not changed for frozen_after while messages kept coming."""
        p = self.prices.get(symbol)
        return p is not None and now - p.changed_at >= self.spec.frozen_after and now - p.seen_at < self.spec.frozen_after

    def observe(self, parsed: Parsed, now: float) -> int:
        """Record one data message that arrived at `now` (wall clock); returns the gaps it
        showed. The hot path: a few dict lookups and a bisect per item."""
        self.messages += 1
        self.last_message_at = now
        gaps = 0
        lagged = False
        for item in parsed.items:
            if item.seq is not None:
                gaps += self._sequence(item.stream, item.seq)
            if item.event_time is not None and not lagged:
                # One observation per message, from its first timed item: a batch of 50
                # trades is one arrival, not 50.
                self.lag.observe(max(now - item.event_time, 0.0))
                lagged = True
            if item.price is not None and item.symbol is not None:
                self._price(item.symbol, item.price, now)
        self.gaps += gaps
        return gaps

    def observe_sequence_only(self, parsed: Parsed) -> int:
        """A heartbeat or control message that still carries a sequence number (Coinbase
        numbers every message of a connection): checked, not counted as data."""
        gaps = sum(self._sequence(item.stream, item.seq) for item in parsed.items if item.seq is not None)
        self.gaps += gaps
        return gaps

    def _sequence(self, stream: str, seq: Seq) -> int:
        last = self.sequences.get(stream)
        if last is None and len(self.sequences) >= limits.FEED_STREAMS and not seq.reset:
            return 0
        verdict = check(last, seq)
        self.sequences[stream] = advance(last, seq, verdict)
        return 1 if verdict in (Verdict.GAP, Verdict.OUT_OF_ORDER) else 0

    def _price(self, symbol: str, price: float, now: float) -> None:
        p = self.prices.get(symbol)
        if p is None:
            if len(self.prices) < limits.FEED_SYMBOLS:
                self.prices[symbol] = PricePoint(price, now, now)
            return
        if p.price != price:
            p.price = price
            p.changed_at = now
        p.seen_at = now

    def on_connected(self, now: float) -> None:
        self.connected = True
        self.connected_since = now
        # Numbers of the last connection say nothing about the next one (Coinbase's
        # sequence_num restarts per connection; books are resent as snapshots).
        self.sequences.clear()

    def on_disconnected(self, reason: str) -> None:
        self.connected = False
        self.connected_since = None
        self.last_reason = reason
        self.reconnects[reason] += 1


class FeedStore:
    """Every configured feed's state, by (provider, feed). `listeners` hear each connect
    and disconnect (the provider status reads them)."""

    def __init__(self) -> None:
        self.feeds: dict[tuple[str, str], FeedState] = {}
        self.listeners: list[Callable[[FeedState], None]] = []

    def apply(self, config: FeedsConfig) -> None:
        """Keep the counters of feeds whose spec is unchanged; start the others fresh."""
        old = self.feeds
        new: dict[tuple[str, str], FeedState] = {}
        for spec in config.feeds:
            prev = old.get(spec.key)
            new[spec.key] = prev if prev is not None and prev.spec == spec else FeedState(spec)
        self.feeds = new

    def get(self, provider: str, feed: str) -> FeedState | None:
        return self.feeds.get((provider, feed))

    def __iter__(self) -> Iterator[FeedState]:
        return iter(list(self.feeds.values()))

    def changed(self, feed: FeedState) -> None:
        for listener in self.listeners:
            listener(feed)

    def troubled_providers(self) -> set[str]:
        """Providers with a feed that is not connected after it was first tried."""
        return {f.spec.provider for f in self.feeds.values() if not f.connected and f.last_reason is not None}
