"""Every metric of the contract (DESIGN.md), defined here and nowhere else, and rendered
straight from `State` in the Prometheus text format 0.0.4.

prometheus-client's generic path costs about 9 µs a line (some 30 lines an endpoint),
and a scrape of 1,000 endpoints would block the event loop for a quarter of a second,
inflating the latency of every probe in flight. This renderer writes our fixed families
with cached label strings and streams them in pieces, yielding to the loop between
pieces. The client library's registry still serves the process, GC and API-request
metrics, appended after ours. Scrapes never probe: the values are the last scheduled
results, as each HELP says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .chains import Chains
from .families import (
    CHAIN_HEAD,
    CHAIN_HEAD_CHANGED,
    CHAIN_HEAD_TIME,
    CHAIN_ID_MISMATCH,
    CHAIN_LAG_BLOCKS,
    CHAIN_LAG_SECONDS,
    CHAIN_REFERENCE,
    CHAIN_SYNCING,
    CIRCUIT,
    CIRCUIT_STATES,
    CODES,
    DATA_AGE,
    DELAY,
    DELAY_BUCKETS,
    DURATION,
    DURATION_BUCKETS,
    INFO,
    KEYS,
    LAST_PROBE,
    LAST_SUCCESS,
    MAX_AGE,
    OUTCOMES,
    PROBES,
    PROVIDER_STATUSES,
    RELOAD_AT,
    RELOAD_OK,
    RETRIES,
    RL_LIMIT,
    RL_REMAINING,
    RL_RESET,
    RUNS,
    SCHEDULE_RESULTS,
    STATUS,
    UP,
    VALUE,
    ZSCORE,
    Family,
)
from .state import EndpointState, Histogram, ProviderState, State

STREAM_CHUNK = 256 * 1024  # bytes written between two yields to the event loop


_OUTCOMES = tuple((o, f',outcome="{o.value}"}} ') for o in OUTCOMES)


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


def _histogram(name: str, labels: str, le: tuple[str, ...], hist: Histogram) -> Iterator[str]:
    running = 0
    for bound, n in zip(le, hist.counts, strict=True):
        running += n
        yield f"{name}_bucket{{{labels},{bound}}} {running}\n"
    yield f"{name}_count{{{labels}}} {hist.count}\n"
    yield f"{name}_sum{{{labels}}} {_num(hist.sum)}\n"


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


def _up(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if (last := ep.last_completed) is not None:
        yield f"{UP.name}{{{epl}}} {'1.0' if last.ok else '0.0'}\n"


def _duration(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    yield from _histogram(DURATION.name, epl, _DURATION_LE, ep.duration)


def _probes(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    counts = ep.outcomes
    for outcome, suffix in _OUTCOMES:
        yield f"{PROBES.name}{{{epl}{suffix}{counts[outcome]}\n"


def _codes(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    for code, n in sorted(ep.codes.items()):
        yield f'{CODES.name}{{{pel},code="{code}"}} {n}\n'


def _retries(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    for reason, n in sorted(ep.retries.items()):
        yield f'{RETRIES.name}{{{pel},reason="{reason}"}} {n}\n'


def _last_probe(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if (last := ep.last_completed) is not None:
        yield f"{LAST_PROBE.name}{{{pel}}} {_num(last.finished_at)}\n"


def _last_success(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if ep.last_success_at is not None:
        yield f"{LAST_SUCCESS.name}{{{pel}}} {_num(ep.last_success_at)}\n"


def _data_age(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if (age := ep.data_age(now)) is not None:
        yield f"{DATA_AGE.name}{{{pel}}} {_num(age)}\n"


def _max_age(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if (bound := ep.max_age) is not None:
        yield f"{MAX_AGE.name}{{{pel}}} {_num(bound)}\n"


def _zscore(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    if ep.zscore is not None:
        yield f"{ZSCORE.name}{{{pel}}} {_num(ep.zscore)}\n"


def _values(ep: EndpointState, epl: str, pel: str, now: float) -> Iterator[str]:
    for name, number in ep.values:
        yield f'{VALUE.name}{{{pel},name="{_escape(name)}"}} {_num(number)}\n'


def _quota(attr: str, family: Family) -> Callable[[ProviderState, str, float], Iterator[str]]:
    def lines(p: ProviderState, pl: str, now: float) -> Iterator[str]:
        for scope, q in sorted(p.all_quotas(now).items()):
            if (v := getattr(q, attr)) is not None:
                yield f'{family.name}{{{pl},scope="{_escape(scope)}"}} {_num(v)}\n'

    return lines


def _circuit(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    for s in CIRCUIT_STATES:
        yield f'{CIRCUIT.name}{{{pl},state="{s.value}"}} {"1.0" if p.circuit is s else "0.0"}\n'


def _status(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    current = p.status()
    for st in PROVIDER_STATUSES:
        yield f'{STATUS.name}{{{pl},category="{p.category}",status="{st.value}"}} {"1.0" if current is st else "0.0"}\n'


def _delay(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    yield from _histogram(DELAY.name, pl, _DELAY_LE, p.schedule_delay)


def _runs(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    for result in SCHEDULE_RESULTS:
        yield f'{RUNS.name}{{{pl},result="{result.value}"}} {p.schedule_runs[result]}\n'


def _keys(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    for env, valid in p.keys.items():
        yield f'{KEYS.name}{{{pl},key="{_escape(env)}"}} {"1.0" if valid else "0.0"}\n'


def _info(p: ProviderState, pl: str, now: float) -> Iterator[str]:
    auth = str(p.spec.auth.requires_key).lower()
    enabled = "false" if p.disabled else "true"
    yield f'{INFO.name}{{{pl},category="{p.category}",base_url="{_escape(p.spec.base_url)}",requires_key="{auth}",enabled="{enabled}"}} 1.0\n'


EndpointLines = Callable[[EndpointState, str, str, float], Iterator[str]]
ProviderLines = Callable[[ProviderState, str, float], Iterator[str]]
ENDPOINT_WRITERS: dict[Family, EndpointLines] = {
    UP: _up,
    DURATION: _duration,
    PROBES: _probes,
    CODES: _codes,
    RETRIES: _retries,
    LAST_PROBE: _last_probe,
    LAST_SUCCESS: _last_success,
    DATA_AGE: _data_age,
    MAX_AGE: _max_age,
    ZSCORE: _zscore,
    VALUE: _values,
}
PROVIDER_WRITERS: dict[Family, ProviderLines] = {
    RL_LIMIT: _quota("limit", RL_LIMIT),
    RL_REMAINING: _quota("remaining", RL_REMAINING),
    RL_RESET: _quota("reset_at", RL_RESET),
    CIRCUIT: _circuit,
    STATUS: _status,
    DELAY: _delay,
    RUNS: _runs,
    KEYS: _keys,
    INFO: _info,
}


# The families that show disabled providers too.
_WITH_DISABLED = frozenset({STATUS, INFO})


class Exposition:
    """Renders our families from `State`, then a prometheus-client registry's."""

    def __init__(self, state: State, registry: CollectorRegistry, clock: Callable[[], float] = time.time, chains: Chains | None = None) -> None:
        self.state = state
        self.chains = chains
        self.registry = registry
        self.clock = clock
        self.labels = LabelCache()

    def lines(self) -> Iterator[str]:
        """Our exposition, family after family; each family's lines together, as the format wants."""
        now = self.clock()
        providers = list(self.state.providers.values())
        every = list(self.state.every_provider())
        endpoints = [(ep, *self.labels.endpoint(ep)) for p in providers for ep in p.endpoints.values()]
        for family, write in ENDPOINT_WRITERS.items():
            yield family.header()
            for ep, epl, pel in endpoints:
                yield from write(ep, epl, pel, now)
        for family, pwrite in PROVIDER_WRITERS.items():
            yield family.header()
            # A disabled provider is never probed: no series that an alert could read as
            # down (up, key_valid, breaker, schedule), only its info and its status.
            for p in every if family in _WITH_DISABLED else providers:
                yield from pwrite(p, self.labels.provider(p.name), now)
        if self.chains is not None:
            yield from chain_lines(self.chains, now)
        yield RELOAD_OK.header()
        yield f"{RELOAD_OK.name} {'1.0' if self.state.config_reload_ok else '0.0'}\n"
        yield RELOAD_AT.header()
        if self.state.config_reload_success_at is not None:
            yield f"{RELOAD_AT.name} {_num(self.state.config_reload_success_at)}\n"
        self.labels.trim(len(endpoints))

    def render(self) -> bytes:
        """All at once (tests, small configs)."""
        return "".join(self.lines()).encode() + generate_latest(self.registry)

    async def stream(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the exposition in pieces of about STREAM_CHUNK bytes, letting the event
        loop run between them: memory stays bounded and probes in flight keep their timing."""
        parts: list[str] = []
        size = 0
        for line in self.lines():
            parts.append(line)
            size += len(line)
            if size >= STREAM_CHUNK:
                await write("".join(parts).encode())
                await asyncio.sleep(0)
                parts, size = [], 0
        parts.append(generate_latest(self.registry).decode())
        await write("".join(parts).encode())


def build_registry(process_metrics: bool = True) -> CollectorRegistry:
    """The registry for everything that is not ours: process, platform, GC, API requests."""
    registry = CollectorRegistry(auto_describe=False)
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


# ---------------------------------------------------------------- chain heads (issue 11)


def chain_lines(chains: Chains, now: float) -> Iterator[str]:
    """The chain families from the one owner of the heads: lag is recomputed against the
    reference as it stands at scrape time, so every node's lag moves when any head does.
    A node on another chain has no lag (it is not on this chain's scale)."""
    views = sorted(chains.views(now), key=lambda v: (v.member.spec.name, v.member.provider, v.member.endpoint))
    rows = [
        (v, f'provider="{_escape(v.member.provider)}",endpoint="{_escape(v.member.endpoint)}",chain="{_escape(v.member.spec.name)}"') for v in views if v.head
    ]
    yield CHAIN_HEAD.header()
    for v, labels in rows:
        yield f"{CHAIN_HEAD.name}{{{labels}}} {_num(v.head.block)}\n"  # type: ignore[union-attr]  # rows keep views with a head
    yield CHAIN_HEAD_TIME.header()
    for v, labels in rows:
        if v.head is not None and v.head.timestamp is not None:
            yield f"{CHAIN_HEAD_TIME.name}{{{labels}}} {_num(v.head.timestamp)}\n"
    yield CHAIN_HEAD_CHANGED.header()
    for v, labels in rows:
        if v.moved_at is not None:
            yield f"{CHAIN_HEAD_CHANGED.name}{{{labels}}} {_num(v.moved_at)}\n"
    yield CHAIN_LAG_BLOCKS.header()
    for v, labels in rows:
        if v.lag is not None:
            yield f"{CHAIN_LAG_BLOCKS.name}{{{labels}}} {_num(v.lag.blocks)}\n"
    yield CHAIN_LAG_SECONDS.header()
    for v, labels in rows:
        if v.lag is not None and v.lag.seconds is not None:
            yield f"{CHAIN_LAG_SECONDS.name}{{{labels}}} {_num(v.lag.seconds)}\n"
    yield CHAIN_REFERENCE.header()
    for name in chains.names():
        if (ref := chains.reference(name, now)) is not None:
            yield f'{CHAIN_REFERENCE.name}{{chain="{_escape(name)}"}} {_num(ref.block)}\n'
    yield CHAIN_ID_MISMATCH.header()
    for v, labels in rows:
        yield f"{CHAIN_ID_MISMATCH.name}{{{labels}}} {'0.0' if v.head and v.head.right_chain else '1.0'}\n"
    yield CHAIN_SYNCING.header()
    for v, labels in rows:
        yield f"{CHAIN_SYNCING.name}{{{labels}}} {'1.0' if v.head and v.head.syncing else '0.0'}\n"
