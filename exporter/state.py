"""The store: the exporter's in-memory state, written only from `ProbeResult`s and
`ScheduleRun`s.

Metrics, the JSON API and events read it. Endpoints removed from the config are dropped
here, so their series vanish from /metrics by themselves. Breaker and key states are not
copied here: they are read from each provider's runtime (runtime.py), their one owner.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Config, Endpoint, Provider
from .families import DELAY_BUCKETS, DURATION_BUCKETS
from .model import CircuitState, DisabledReason, Maintenance, Outcome, ProbeKind, ProbeResult, ProviderStatus, QuotaObservation, ScheduleResult, ScheduleRun
from .ratelimit import BUDGET_SCOPE
from .runtime import ProviderRuntime, Runtimes

ZSCORE_WINDOW = 100
ZSCORE_MIN_SAMPLES = 10
HEALTH_WINDOW = 20
HISTORY_SIZE = 1000
FAILURES_SIZE = 200
# A maintenance report is trusted this many intervals of its status endpoint: a source
# that stopped answering must not keep a provider muted for ever (nor unmute it at once).
MAINTENANCE_TTL_INTERVALS = 3
# Outcomes that say the endpoint is down for us (as opposed to impaired: stale, slow,
# rate-limited or over budget).
FAILING = frozenset(
    {
        Outcome.TIMEOUT,
        Outcome.CONNECTION_ERROR,
        Outcome.AUTH_ERROR,
        Outcome.CLIENT_ERROR,
        Outcome.SERVER_ERROR,
        Outcome.BAD_PAYLOAD,
        Outcome.CIRCUIT_OPEN,
    }
)


class Histogram:
    """Bucket counts (not cumulative), sum and count; metrics.py writes them cumulative."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class LatencyWindow:
    """The last ZSCORE_WINDOW latencies of one endpoint, for the anomaly z-score.

    A ring of unboxed doubles with running sums: O(1) per probe and 800 bytes per
    endpoint (a deque of floats costs four times that, and a full scan per probe)."""

    __slots__ = ("_n", "_next", "_ring", "_sum", "_sumsq")

    def __init__(self) -> None:
        self._ring = array("d", bytes(8 * ZSCORE_WINDOW))
        self._next = 0
        self._n = 0
        self._sum = 0.0
        self._sumsq = 0.0

    def zscore_and_add(self, value: float) -> float | None:
        """The z-score of `value` against the samples before it; then remember it."""
        z = None
        n = self._n
        if n >= ZSCORE_MIN_SAMPLES:
            mean = self._sum / n
            var = max(self._sumsq - n * mean * mean, 0.0) / (n - 1)
            # A perfectly flat history makes every change infinite: floor the spread at 1 ms.
            z = (value - mean) / max(math.sqrt(var), 0.001)
        if n == ZSCORE_WINDOW:
            old = self._ring[self._next]
            self._sum -= old
            self._sumsq -= old * old
        else:
            self._n = n + 1
        self._ring[self._next] = value
        self._sum += value
        self._sumsq += value * value
        self._next = (self._next + 1) % ZSCORE_WINDOW
        if self._next == 0:
            # Re-add from scratch once per lap, so rounding errors cannot pile up.
            self._sum = math.fsum(self._ring[: self._n])
            self._sumsq = math.fsum(x * x for x in self._ring[: self._n])
        return z


class HealthRing:
    """Health points of the last HEALTH_WINDOW probes that sent a request: 2 a fast
    success, 1 a slow one, 0 a failure. 20 bytes, where a deque costs 600."""

    __slots__ = ("_n", "_next", "_points")

    def __init__(self) -> None:
        self._points = bytearray(HEALTH_WINDOW)
        self._next = 0
        self._n = 0

    def add(self, points: int) -> None:
        self._points[self._next] = points
        self._next = (self._next + 1) % HEALTH_WINDOW
        self._n = min(self._n + 1, HEALTH_WINDOW)

    def score(self) -> float | None:
        """0 to 1; None before the first probe."""
        return None if self._n == 0 else sum(self._points[: self._n]) / (2 * self._n)


@dataclass(slots=True)
class EndpointState:
    provider: str
    category: str
    spec: Endpoint
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    duration: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    latencies: LatencyWindow = field(default_factory=LatencyWindow)
    recent: HealthRing = field(default_factory=HealthRing)
    last: ProbeResult | None = None
    last_completed: ProbeResult | None = None
    last_success_at: float | None = None
    data_timestamp: float | None = None
    zscore: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_age(self) -> float | None:
        return self.spec.freshness.max_age if self.spec.freshness else None

    @property
    def values(self) -> tuple[tuple[str, float], ...]:
        """Values of the last completed probe: a failing endpoint's old price is not shown."""
        return self.last_completed.values if self.last_completed else ()

    def data_age(self, now: float) -> float | None:
        ts = self.data_timestamp if self.spec.freshness else self.last_success_at
        return None if ts is None else max(now - ts, 0.0)

    @property
    def side_channel(self) -> bool:
        """A status source: never counts in the provider's status, health or `up`."""
        return self.spec.kind is ProbeKind.STATUS

    @property
    def healthy(self) -> bool:
        return self.last is not None and self.last.ok and not self.last.slow

    @property
    def failing(self) -> bool:
        return self.last is not None and self.last.outcome in FAILING

    def health_score(self) -> float | None:
        """0 to 1 over the recent probes: fast successes count 1, slow ones half."""
        return self.recent.score()


@dataclass
class ProviderState:
    spec: Provider
    endpoints: dict[str, EndpointState]
    runtime: ProviderRuntime
    quotas: dict[str, QuotaObservation] = field(default_factory=dict)
    schedule_delay: Histogram = field(default_factory=lambda: Histogram(DELAY_BUCKETS))
    schedule_runs: Counter[ScheduleResult] = field(default_factory=Counter)
    disabled: DisabledReason | None = None  # configured but not probed (State.disabled holds these)
    # How many endpoints are probed / healthy / failing, kept current by `State.record`
    # so that status() costs the same for 1 endpoint or 1,000 (it is read per probe).
    _probed: int = field(default=0, init=False)
    _healthy: int = field(default=0, init=False)
    _failing: int = field(default=0, init=False)
    # The last report of the provider's status source, when it came, and that endpoint's
    # interval (its trust horizon); None before any source answered.
    maintenance_report: tuple[Maintenance, float, float] | None = None
    # A feed of this provider is down (exporter/feeds/): an online provider shows degraded.
    feed_trouble: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        for ep in self.endpoints.values():
            self._count(ep, +1)

    def _count(self, ep: EndpointState, sign: int) -> None:
        if ep.last is not None and not ep.side_channel:
            self._probed += sign
            self._healthy += sign * ep.healthy
            self._failing += sign * ep.failing

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def category(self) -> str:
        return self.spec.category.value

    def all_quotas(self, now: float) -> dict[str, QuotaObservation]:
        """The provider's quotas as last reported in its headers, and the client-side
        budget as it stands now (read from the runtime, which owns it)."""
        budget = self.runtime.budget
        if budget is None:
            return self.quotas
        return {**self.quotas, BUDGET_SCOPE: budget.observe(now)}

    @property
    def circuit(self) -> CircuitState:
        return self.runtime.breaker.state

    @property
    def keys(self) -> dict[str, bool]:
        """Validity of each key that is set, by env var name (never a value). An env var
        that is not set is no key at all: were it shown as invalid, ApiKeyInvalid would
        fire for every optional key left unset and every unused rotation slot."""
        return self.runtime.keys.set_validity()

    def maintenance(self, now: float) -> Maintenance | None:
        """The status source's last report while it is trusted; None when there is no
        source, it never answered, or its last answer is too old."""
        if self.maintenance_report is None:
            return None
        report, at, interval = self.maintenance_report
        return report if now - at <= MAINTENANCE_TTL_INTERVALS * interval else None

    def status(self) -> ProviderStatus:
        if self.disabled is not None:
            return ProviderStatus.DISABLED
        if self._probed == 0:
            return ProviderStatus.UNKNOWN
        if self._healthy == self._probed:
            return ProviderStatus.DEGRADED if self.feed_trouble else ProviderStatus.ONLINE
        if self._failing == self._probed:
            return ProviderStatus.OFFLINE
        return ProviderStatus.DEGRADED

    def health_score(self) -> int | None:
        """0 to 100: recent successes across the provider's endpoints, slow ones half."""
        scores = [s for e in self.endpoints.values() if not e.side_channel and (s := e.health_score()) is not None]
        return None if not scores else round(100 * sum(scores) / len(scores))


class State:
    def __init__(self) -> None:
        self.providers: dict[str, ProviderState] = {}  # the providers that are probed
        # Configured but not probed (exporter.selection): the JSON API lists them and
        # /metrics shows them in crypto_api_provider_info and _provider_status only.
        self.disabled: dict[str, ProviderState] = {}
        self.history: deque[ProbeResult] = deque(maxlen=HISTORY_SIZE)
        self.failures: deque[ProbeResult] = deque(maxlen=FAILURES_SIZE)
        self.config_reload_ok = False
        self.config_reload_success_at: float | None = None
        self._feed_trouble: set[str] = set()

    def apply_config(self, config: Config, runtimes: Runtimes) -> None:
        """Keep the counters of endpoints that stay; drop the ones that went. `runtimes`
        must already match `config`."""
        new: dict[str, ProviderState] = {}
        for p in config.providers:
            old = self.providers.get(p.name)
            endpoints: dict[str, EndpointState] = {}
            for ep in p.endpoints:
                prev = old.endpoints.get(ep.name) if old else None
                if prev is not None and prev.category == p.category.value:
                    prev.spec = ep
                    endpoints[ep.name] = prev
                else:
                    endpoints[ep.name] = EndpointState(p.name, p.category.value, ep)
            if old is not None:
                new[p.name] = ProviderState(p, endpoints, runtimes[p.name], old.quotas, old.schedule_delay, old.schedule_runs)
                if any(ep.kind is ProbeKind.STATUS for ep in p.endpoints):
                    new[p.name].maintenance_report = old.maintenance_report
            else:
                new[p.name] = ProviderState(p, endpoints, runtimes[p.name])
        for name, ps in new.items():
            ps.feed_trouble = name in self._feed_trouble
        self.providers = new
        # Nothing of a disabled provider is counted: a fresh record each time, whose
        # runtime (never used) only lets the API's views read it like the others.
        self.disabled = {
            d.name: ProviderState(
                d.provider,
                {ep.name: EndpointState(d.name, d.provider.category.value, ep) for ep in d.provider.endpoints},
                ProviderRuntime.fresh(d.provider),
                disabled=d.reason,
            )
            for d in config.disabled
        }

    def every_provider(self) -> Iterable[ProviderState]:
        """Probed providers, then disabled ones."""
        yield from self.providers.values()
        yield from self.disabled.values()

    def set_feed_trouble(self, providers: set[str]) -> None:
        """Providers with a feed down right now (the feed store says which)."""
        self._feed_trouble = providers
        for name, ps in self.providers.items():
            ps.feed_trouble = name in providers

    def last_outcome(self, provider: str, endpoint: str) -> Outcome | None:
        ps = self.providers.get(provider)
        ep = ps.endpoints.get(endpoint) if ps is not None else None
        return ep.last.outcome if ep is not None and ep.last is not None else None

    def record(self, result: ProbeResult) -> None:
        provider = self.providers.get(result.provider)
        ep = provider.endpoints.get(result.endpoint) if provider else None
        if provider is None or ep is None:
            return  # a probe that finished after its endpoint was removed by a reload
        provider._count(ep, -1)
        ep.outcomes[result.outcome] += 1
        for code in result.http_codes:
            ep.codes[code] += 1
        for reason in result.retries:
            ep.retries[reason.value] += 1
        ep.last = result
        provider._count(ep, +1)
        if result.made_request:
            ep.recent.add(0 if not result.ok else 1 if result.slow else 2)
            ep.last_completed = result
            if result.duration is not None:
                ep.duration.observe(result.duration)
                ep.zscore = ep.latencies.zscore_and_add(result.duration)
            if result.ok:
                ep.last_success_at = result.finished_at
            if result.data_timestamp is not None:
                ep.data_timestamp = result.data_timestamp
        if result.maintenance is not None:
            provider.maintenance_report = (result.maintenance, result.finished_at, ep.spec.interval)
        for quota in result.quotas:
            if quota.scope != BUDGET_SCOPE:  # the budget is read live from the runtime
                provider.quotas[quota.scope] = quota
        self.history.append(result)
        if not result.ok:
            self.failures.append(result)

    def record_schedule(self, run: ScheduleRun) -> None:
        provider = self.providers.get(run.provider)
        if provider is None:
            return
        provider.schedule_runs[run.result] += run.count
        if run.delay is not None:
            provider.schedule_delay.observe(run.delay)

    def record_reload(self, ok: bool, at: float) -> None:
        self.config_reload_ok = ok
        if ok:
            self.config_reload_success_at = at

    def endpoints(self) -> Iterable[EndpointState]:
        for p in self.providers.values():
            yield from p.endpoints.values()
