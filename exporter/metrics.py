"""Every metric of the contract (DESIGN.md), defined here and nowhere else, and rendered
straight from `State` in the Prometheus text format 0.0.4.

prometheus-client's generic path costs about 9 µs a line (some 30 lines an endpoint),
and a scrape of 1,000 endpoints would block the event loop for a quarter of a second,
inflating the latency of every probe in flight. This renderer writes our fixed families
with cached label strings in one pass, and yields to the loop every few hundred
endpoints. The client library's registry still serves the process, GC and API-request
metrics, appended after ours. Scrapes never probe: the values are the last scheduled
results, as each HELP says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .model import CircuitState, Outcome, ProviderStatus
from .state import DELAY_BUCKETS, DURATION_BUCKETS, EndpointState, Histogram, ProviderState, State

P = "crypto_api_"
CHUNK = 250  # endpoints rendered between two yields to the event loop


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    help: str

    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type}\n"


# Order of exposition. Names are the public API: never rename.
UP = Family(P + "up", "gauge", "1 if the last completed scheduled probe of the endpoint succeeded.")
DURATION = Family(P + "probe_duration_seconds", "histogram", "Latency of each scheduled probe that got a response.")
PROBES = Family(P + "probes_total", "counter", "Scheduled probes by outcome.")
CODES = Family(P + "http_responses_total", "counter", "HTTP status codes seen, one per attempt.")
RETRIES = Family(P + "retries_total", "counter", "Retries made, by reason.")
LAST_PROBE = Family(P + "last_probe_timestamp_seconds", "gauge", "When the last scheduled probe finished (unix seconds).")
LAST_SUCCESS = Family(P + "last_success_timestamp_seconds", "gauge", "When the last successful probe finished (unix seconds).")
DATA_AGE = Family(P + "data_age_seconds", "gauge", "Age of the newest data at scrape time: the payload's timestamp, else the last success.")
MAX_AGE = Family(P + "data_max_age_seconds", "gauge", "The configured freshness bound of the endpoint.")
ZSCORE = Family(P + "latency_anomaly_zscore", "gauge", "z-score of the last latency against the endpoint's recent latencies.")
VALUE = Family(P + "value", "gauge", "Numbers extracted from the last completed probe's payload.")
RL_LIMIT = Family(P + "rate_limit_limit", "gauge", "Quota size per scope: a provider header's window, or 'budget' for the exporter's own budget.")
RL_REMAINING = Family(P + "rate_limit_remaining", "gauge", "Quota left per scope, as last reported.")
RL_RESET = Family(P + "rate_limit_reset_timestamp_seconds", "gauge", "When the quota resets (unix seconds).")
CIRCUIT = Family(P + "circuit_breaker_state", "gauge", "Circuit breaker state per provider: 1 for the current state.")
STATUS = Family(P + "provider_status", "gauge", "Provider status from its endpoints' last probes: 1 for the current status.")
DELAY = Family(P + "schedule_delay_seconds", "histogram", "How late each scheduled probe started against its plan.")
RUNS = Family(P + "schedule_runs_total", "counter", "Scheduled runs by result: on_time, late or missed.")
KEYS = Family(P + "key_valid", "gauge", "1 if the API key in this env var is set and not rejected by the provider.")
INFO = Family(P + "provider_info", "gauge", "Configured providers.")
RELOAD_OK = Family(P + "config_last_reload_successful", "gauge", "1 if the last load or reload of providers.yaml worked.")
RELOAD_AT = Family(P + "config_last_reload_success_timestamp_seconds", "gauge", "When providers.yaml was last loaded successfully (unix seconds).")

ENDPOINT_FAMILIES = (UP, DURATION, PROBES, CODES, RETRIES, LAST_PROBE, LAST_SUCCESS, DATA_AGE, MAX_AGE, ZSCORE, VALUE)
PROVIDER_FAMILIES = (RL_LIMIT, RL_REMAINING, RL_RESET, CIRCUIT, STATUS, DELAY, RUNS, KEYS, INFO)
FAMILIES = (*ENDPOINT_FAMILIES, *PROVIDER_FAMILIES, RELOAD_OK, RELOAD_AT)

_OUTCOMES = tuple((o, f',outcome="{o.value}"}} ') for o in Outcome)
_SCHEDULE_RESULTS = ("on_time", "late", "missed")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    # The format prometheus-client writes: repr of a float, +Inf/-Inf/NaN spelled out.
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _bucket_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    return (*(f'le="{float(b)!r}"' for b in bounds), 'le="+Inf"')


_DURATION_LE = _bucket_labels(DURATION_BUCKETS)
_DELAY_LE = _bucket_labels(DELAY_BUCKETS)


def _histogram(out: list[str], name: str, labels: str, le: tuple[str, ...], hist: Histogram) -> None:
    running = 0
    for bound, n in zip(le, hist.counts, strict=True):
        running += n
        out.append(f"{name}_bucket{{{labels},{bound}}} {running}\n")
    out.append(f"{name}_count{{{labels}}} {hist.count}\n")
    out.append(f"{name}_sum{{{labels}}} {_num(hist.sum)}\n")


class LabelCache:
    """Escaped label strings per endpoint and provider, built once, not per scrape."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._providers: dict[str, str] = {}

    def endpoint(self, ep: EndpointState) -> tuple[str, str]:
        key = (ep.provider, ep.category, ep.name)
        labels = self._endpoints.get(key)
        if labels is None:
            p, c, e = (_escape(x) for x in key)
            labels = (f'provider="{p}",category="{c}",endpoint="{e}"', f'provider="{p}",endpoint="{e}"')
            self._endpoints[key] = labels
        return labels

    def provider(self, name: str) -> str:
        labels = self._providers.get(name)
        if labels is None:
            labels = self._providers[name] = f'provider="{_escape(name)}"'
        return labels

    def trim(self, endpoints: int) -> None:
        """Forget endpoints removed by reloads once the cache holds twice what is live."""
        if len(self._endpoints) > 2 * endpoints + 100:
            self._endpoints.clear()
            self._providers.clear()


def _render_endpoint(ep: EndpointState, labels: tuple[str, str], now: float, out: dict[Family, list[str]]) -> None:
    epl, pel = labels
    last = ep.last_completed
    if last is not None:
        out[UP].append(f"{UP.name}{{{epl}}} {'1.0' if last.ok else '0.0'}\n")
        out[LAST_PROBE].append(f"{LAST_PROBE.name}{{{pel}}} {_num(last.finished_at)}\n")
    _histogram(out[DURATION], DURATION.name, epl, _DURATION_LE, ep.duration)
    counts = ep.outcomes
    lines = out[PROBES]
    for outcome, suffix in _OUTCOMES:
        lines.append(f"{PROBES.name}{{{epl}{suffix}{counts[outcome]}\n")
    for code, n in sorted(ep.codes.items()):
        out[CODES].append(f'{CODES.name}{{{pel},code="{code}"}} {n}\n')
    for reason, n in sorted(ep.retries.items()):
        out[RETRIES].append(f'{RETRIES.name}{{{pel},reason="{reason}"}} {n}\n')
    if ep.last_success_at is not None:
        out[LAST_SUCCESS].append(f"{LAST_SUCCESS.name}{{{pel}}} {_num(ep.last_success_at)}\n")
    if (age := ep.data_age(now)) is not None:
        out[DATA_AGE].append(f"{DATA_AGE.name}{{{pel}}} {_num(age)}\n")
    if (bound := ep.max_age) is not None:
        out[MAX_AGE].append(f"{MAX_AGE.name}{{{pel}}} {_num(bound)}\n")
    if ep.zscore is not None:
        out[ZSCORE].append(f"{ZSCORE.name}{{{pel}}} {_num(ep.zscore)}\n")
    for name, number in ep.values:
        out[VALUE].append(f'{VALUE.name}{{{pel},name="{_escape(name)}"}} {_num(number)}\n')


def _render_provider(p: ProviderState, pl: str, out: dict[Family, list[str]]) -> None:
    for scope, q in sorted(p.quotas.items()):
        sl = f'{pl},scope="{_escape(scope)}"'
        if q.limit is not None:
            out[RL_LIMIT].append(f"{RL_LIMIT.name}{{{sl}}} {_num(q.limit)}\n")
        if q.remaining is not None:
            out[RL_REMAINING].append(f"{RL_REMAINING.name}{{{sl}}} {_num(q.remaining)}\n")
        if q.reset_at is not None:
            out[RL_RESET].append(f"{RL_RESET.name}{{{sl}}} {_num(q.reset_at)}\n")
    for s in CircuitState:
        out[CIRCUIT].append(f'{CIRCUIT.name}{{{pl},state="{s.value}"}} {"1.0" if p.circuit is s else "0.0"}\n')
    current = p.status()
    cl = f'{pl},category="{p.category}"'
    for st in ProviderStatus:
        out[STATUS].append(f'{STATUS.name}{{{cl},status="{st.value}"}} {"1.0" if current is st else "0.0"}\n')
    _histogram(out[DELAY], DELAY.name, pl, _DELAY_LE, p.schedule_delay)
    for result in _SCHEDULE_RESULTS:
        out[RUNS].append(f'{RUNS.name}{{{pl},result="{result}"}} {p.schedule_runs[result]}\n')
    for env, valid in p.keys.items():
        out[KEYS].append(f'{KEYS.name}{{{pl},key="{_escape(env)}"}} {"1.0" if valid else "0.0"}\n')
    info = f'{cl},base_url="{_escape(p.spec.base_url)}",requires_key="{str(p.spec.auth.requires_key).lower()}"'
    out[INFO].append(f"{INFO.name}{{{info}}} 1.0\n")


def _assemble(state: State, out: dict[Family, list[str]]) -> str:
    out[RELOAD_OK].append(f"{RELOAD_OK.name} {'1.0' if state.config_reload_ok else '0.0'}\n")
    if state.config_reload_success_at is not None:
        out[RELOAD_AT].append(f"{RELOAD_AT.name} {_num(state.config_reload_success_at)}\n")
    return "".join(f.header() + "".join(out[f]) for f in FAMILIES)


class Exposition:
    """Renders our families from `State`, plus a prometheus-client registry."""

    def __init__(self, state: State, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.registry = registry
        self.clock = clock
        self.labels = LabelCache()

    def render_ours(self) -> str:
        """All in one go (tests, small configs)."""
        out: dict[Family, list[str]] = {f: [] for f in FAMILIES}
        now = self.clock()
        for p in self.state.providers.values():
            for ep in p.endpoints.values():
                _render_endpoint(ep, self.labels.endpoint(ep), now, out)
            _render_provider(p, self.labels.provider(p.name), out)
        return _assemble(self.state, out)

    async def render_async(self) -> bytes:
        """The whole exposition, yielding to the event loop every CHUNK endpoints."""
        out: dict[Family, list[str]] = {f: [] for f in FAMILIES}
        now = self.clock()
        done = 0
        for p in list(self.state.providers.values()):
            for ep in list(p.endpoints.values()):
                _render_endpoint(ep, self.labels.endpoint(ep), now, out)
                done += 1
                if done % CHUNK == 0:
                    await asyncio.sleep(0)
            _render_provider(p, self.labels.provider(p.name), out)
        self.labels.trim(done)
        return _assemble(self.state, out).encode() + generate_latest(self.registry)

    def render(self) -> bytes:
        return self.render_ours().encode() + generate_latest(self.registry)


def build_registry(process_metrics: bool = True) -> CollectorRegistry:
    """The registry for everything that is not ours: process, platform, GC, API requests."""
    registry = CollectorRegistry(auto_describe=False)
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry
