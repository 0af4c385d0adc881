"""The feed families on /metrics: a prometheus-client custom collector that reads the
feed store (client_python's pattern for scheduled results: series of removed feeds
vanish by themselves, and collect() does no I/O). Feeds are few (one connection each),
so the generic path costs nothing worth the hand-written renderer of metrics.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..families import (
    FEED_CONNECTED,
    FEED_GAPS,
    FEED_LAG,
    FEED_LAG_BUCKETS,
    FEED_LAST_MESSAGE,
    FEED_MALFORMED,
    FEED_MESSAGES,
    FEED_PRICE,
    FEED_PRICE_CHANGED,
    FEED_RECONNECT_REASONS,
    FEED_RECONNECTS,
    Family,
)
from .state import FeedStore

_LE = tuple(repr(float(b)) for b in FEED_LAG_BUCKETS)


def _gauge(f: Family) -> GaugeMetricFamily:
    return GaugeMetricFamily(f.name, f.help, labels=f.labels)


def _counter(f: Family) -> CounterMetricFamily:
    return CounterMetricFamily(f.base_name, f.help, labels=f.labels)


class FeedCollector(Collector):
    def __init__(self, store: FeedStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # families appear with the first feed; nothing to check at register time

    def collect(self) -> Iterator[Metric]:
        feeds = list(self.store)
        if not feeds:
            return
        connected, messages, last = _gauge(FEED_CONNECTED), _counter(FEED_MESSAGES), _gauge(FEED_LAST_MESSAGE)
        reconnects, gaps, malformed = _counter(FEED_RECONNECTS), _counter(FEED_GAPS), _counter(FEED_MALFORMED)
        lag = HistogramMetricFamily(FEED_LAG.name, FEED_LAG.help, labels=FEED_LAG.labels)
        price, changed = _gauge(FEED_PRICE), _gauge(FEED_PRICE_CHANGED)
        for f in feeds:
            labels = [f.spec.provider, f.spec.name]
            connected.add_metric(labels, 1.0 if f.connected else 0.0)
            messages.add_metric(labels, f.messages)
            if f.last_message_at is not None:
                last.add_metric(labels, f.last_message_at)
            for reason in FEED_RECONNECT_REASONS:
                reconnects.add_metric([*labels, reason], f.reconnects[reason])
            gaps.add_metric(labels, f.gaps)
            malformed.add_metric(labels, f.malformed)
            running, buckets = 0, []
            for le, n in zip((*_LE, "+Inf"), f.lag.counts, strict=True):
                running += n
                buckets.append((le, running))
            lag.add_metric(labels, buckets, f.lag.sum)
            for symbol, p in sorted(f.prices.items()):
                price.add_metric([*labels, symbol], p.price)
                changed.add_metric([*labels, symbol], p.changed_at)
        yield from (connected, messages, last, reconnects, gaps, lag, malformed, price, changed)
