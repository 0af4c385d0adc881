"""Uptime and latency history for the status page and the badges (issue 16).

Two sources, as for the charts (history.py): Prometheus's HTTP API when `PROMETHEUS_URL`
is set (history that survives restarts), else `UptimeBook`, the exporter's own bounded
memory fed by every probe result. A Prometheus failure falls back to memory with a
warning the page shows.

Uptime is the share of a provider's probes that succeeded, counting the probes an open
circuit breaker skipped as failed (the provider was failing: from a user's side it was
down), and leaving out the ones the exporter's own budget skipped (no evidence either
way) and its status source (a side channel: docs/maintenance.md). Latency is the mean
of the probes that got a response."""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from ...families import DURATION, PROBES, UP
from ...model import Outcome
from .history import PrometheusError, PrometheusHistory

SPARK_POINTS = 48  # 30 minutes each over 24 h
SPARK_SPAN = 24 * 3600.0
HOUR = 3600.0


class Window(StrEnum):
    """The uptime windows the page and the badges show."""

    DAY = "24h"
    WEEK = "7d"

    @property
    def seconds(self) -> float:
        return {Window.DAY: 24 * HOUR, Window.WEEK: 7 * 24 * HOUR}[self]


@dataclass(frozen=True, slots=True)
class Uptime:
    ratio: float | None  # 0 to 1; None when no probe counted in the window
    covered: float  # seconds of the window the source has data for (memory: since start)


@dataclass(frozen=True, slots=True)
class ProviderHistory:
    uptime: Mapping[Window, Uptime]
    latency: float | None  # mean seconds over 24 h
    spark: tuple[float | None, ...]  # SPARK_POINTS mean latencies (seconds), oldest first


@dataclass(frozen=True, slots=True)
class StatusHistory:
    source: Literal["memory", "prometheus"]
    providers: Mapping[str, ProviderHistory]
    warning: str | None = None  # why Prometheus was not used, when it is set but failed


NO_HISTORY = ProviderHistory({w: Uptime(None, 0.0) for w in Window}, None, (None,) * SPARK_POINTS)


def counts_for_uptime(outcome: Outcome) -> bool:
    """A probe the budget skipped says nothing about the provider (see the module doc)."""
    return outcome is not Outcome.BUDGET_EXHAUSTED


# ---------------------------------------------------------------- memory


class Ring:
    """`size` time buckets of `width` seconds: successes, probes, latency sum and count.
    Fixed arrays, O(1) per probe; a bucket is reset when its slot comes round again."""

    __slots__ = ("lat_n", "lat_sum", "ok", "stamp", "total", "width")

    def __init__(self, width: float, size: int) -> None:
        self.width = width
        self.stamp = array("q", [-1]) * size  # which bucket (at // width) each slot holds
        self.ok = array("I", [0]) * size
        self.total = array("I", [0]) * size
        self.lat_sum = array("d", [0.0]) * size
        self.lat_n = array("I", [0]) * size

    def add(self, at: float, ok: bool, latency: float | None) -> None:
        bucket = int(at // self.width)
        i = bucket % len(self.stamp)
        if self.stamp[i] > bucket:
            return  # older than the ring: its slot already holds newer data
        if self.stamp[i] < bucket:
            self.stamp[i] = bucket
            self.ok[i] = self.total[i] = self.lat_n[i] = 0
            self.lat_sum[i] = 0.0
        self.total[i] += 1
        self.ok[i] += ok
        if latency is not None:
            self.lat_sum[i] += latency
            self.lat_n[i] += 1

    def _slots(self, now: float, count: int) -> Iterable[int | None]:
        """The slot of each of the last `count` buckets up to `now`'s, oldest first (None:
        the slot holds another bucket, so that one saw no probe)."""
        last = int(now // self.width)
        size = len(self.stamp)
        for bucket in range(last - min(count, size) + 1, last + 1):
            i = bucket % size
            yield i if self.stamp[i] == bucket else None

    def totals(self, now: float, span: float) -> tuple[int, int, float, int]:
        """(successes, probes, latency sum, latency count) over the buckets that cover `span`."""
        ok = total = lat_n = 0
        lat_sum = 0.0
        for i in self._slots(now, math.ceil(span / self.width)):
            if i is not None:
                ok += self.ok[i]
                total += self.total[i]
                lat_sum += self.lat_sum[i]
                lat_n += self.lat_n[i]
        return ok, total, lat_sum, lat_n

    def means(self, now: float, count: int) -> tuple[float | None, ...]:
        return tuple(None if i is None or self.lat_n[i] == 0 else self.lat_sum[i] / self.lat_n[i] for i in self._slots(now, count))


class ProviderBook:
    __slots__ = ("halves", "hours", "since")

    def __init__(self, since: float) -> None:
        self.since = since
        self.hours = Ring(HOUR, 7 * 24 + 1)  # the 7 d uptime (the current hour is partial)
        self.halves = Ring(SPARK_SPAN / SPARK_POINTS, SPARK_POINTS)  # the 24 h uptime, latency and sparkline


class UptimeBook:
    """The memory source: per provider, hourly buckets over 7 d and half-hourly ones over
    24 h. About 6 KB per provider, whatever the probe rate."""

    def __init__(self) -> None:
        self.books: dict[str, ProviderBook] = {}

    def add(self, provider: str, at: float, ok: bool, latency: float | None) -> None:
        book = self.books.get(provider)
        if book is None:
            book = self.books[provider] = ProviderBook(at)
        book.hours.add(at, ok, latency)
        book.halves.add(at, ok, latency)

    def retain(self, providers: Collection[str]) -> None:
        """Forget providers a reload removed (memory stays bounded by the config)."""
        for name in [n for n in self.books if n not in providers]:
            del self.books[name]

    def history(self, provider: str, now: float) -> ProviderHistory:
        book = self.books.get(provider)
        if book is None:
            return NO_HISTORY
        uptime = {}
        for window in Window:
            ring = book.halves if window is Window.DAY else book.hours
            ok, total, _, _ = ring.totals(now, window.seconds)
            uptime[window] = Uptime(ok / total if total else None, min(window.seconds, max(now - book.since, 0.0)))
        _, _, lat_sum, lat_n = book.halves.totals(now, SPARK_SPAN)
        return ProviderHistory(uptime, lat_sum / lat_n if lat_n else None, book.halves.means(now, SPARK_POINTS))

    def snapshot(self, providers: Iterable[str], now: float) -> StatusHistory:
        return StatusHistory("memory", {name: self.history(name, now) for name in providers})


# ---------------------------------------------------------------- Prometheus

# Only endpoints with a crypto_api_up: a status source (the `status` kind) has none, and
# its results are its own, never the provider's (as provider:crypto_api_probe_errors:ratio_rate5m).
_PROBED = f"and on (job, instance, provider, endpoint) {UP.name}"
_COUNTED = f'{PROBES.name}{{outcome!="{Outcome.BUDGET_EXHAUSTED.value}"}}'


def uptime_expr(window: Window) -> str:
    """Per provider, successes over counted probes in `window`. `or 0 * ...`: a provider
    with no success at all has no success series, and must show 0, not vanish."""
    w = window.value
    ok = f'{PROBES.name}{{outcome="{Outcome.SUCCESS.value}"}}'
    return f"sum by (provider) ((increase({ok}[{w}]) or 0 * increase({_COUNTED}[{w}])) {_PROBED}) / sum by (provider) (increase({_COUNTED}[{w}]) {_PROBED})"


def latency_expr(window: str) -> str:
    """Per provider, mean probe latency over `window` (a PromQL duration)."""
    return f"sum by (provider) (rate({DURATION.name}_sum[{window}]) {_PROBED}) / sum by (provider) (rate({DURATION.name}_count[{window}]) {_PROBED})"


def _number(raw: Any) -> float | None:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def by_provider(vector: Iterable[dict[str, Any]]) -> dict[str, float]:
    """An instant vector's values by `provider` label; NaN (0/0) and junk left out."""
    out = {}
    for series in vector:
        name = series.get("metric", {}).get("provider") if isinstance(series, dict) else None
        value = series.get("value") if isinstance(series, dict) else None
        if isinstance(name, str) and isinstance(value, list) and len(value) == 2 and (v := _number(value[1])) is not None:
            out[name] = v
    return out


def spark_by_provider(matrix: Iterable[dict[str, Any]], grid: Sequence[float]) -> dict[str, tuple[float | None, ...]]:
    out = {}
    for series in matrix:
        name = series.get("metric", {}).get("provider") if isinstance(series, dict) else None
        if not isinstance(name, str):
            continue
        by_ts = {}
        for point in series.get("values", []):
            if isinstance(point, list) and len(point) == 2 and (v := _number(point[1])) is not None:
                by_ts[round(float(point[0]))] = v
        out[name] = tuple(by_ts.get(round(t)) for t in grid)
    return out


async def from_prometheus(prometheus: PrometheusHistory, providers: Iterable[str], now: float) -> StatusHistory:
    """Four queries for every provider at once (not one per provider: the page shows 70)."""
    step = int(SPARK_SPAN / SPARK_POINTS)
    end = math.floor(now / step) * step
    grid = [end - (SPARK_POINTS - 1 - i) * step for i in range(SPARK_POINTS)]
    day, week, latency, spark = await asyncio.gather(
        prometheus.query(uptime_expr(Window.DAY)),
        prometheus.query(uptime_expr(Window.WEEK)),
        prometheus.query(latency_expr(Window.DAY.value)),
        prometheus.query_range(latency_expr(f"{step}s"), grid[0], grid[-1], step),
    )
    ups = {Window.DAY: by_provider(day), Window.WEEK: by_provider(week)}
    means = by_provider(latency)
    sparks = spark_by_provider(spark, grid)
    out = {}
    for name in providers:
        # Prometheus does not say how much of the window it holds: reported as the whole.
        uptime = {w: Uptime(ups[w].get(name), w.seconds if name in ups[w] else 0.0) for w in Window}
        out[name] = ProviderHistory(uptime, means.get(name), sparks.get(name, NO_HISTORY.spark))
    return StatusHistory("prometheus", out)


__all__ = ["PrometheusError", "ProviderHistory", "StatusHistory", "Uptime", "UptimeBook", "Window", "from_prometheus"]
