"""Every metric of the contract (DESIGN.md), defined here and nowhere else.

A custom collector reads `State` at scrape time: no I/O, no probing, and series of
removed endpoints vanish with them. HELP texts say the values are the last scheduled
results, because a scrape never triggers a probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .model import CircuitState, Outcome, ProviderStatus
from .state import Histogram, State

P = "crypto_api_"
EP_LABELS = ["provider", "category", "endpoint"]
PE_LABELS = ["provider", "endpoint"]


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels)


def _add_histogram(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, list(hist.cumulative()), hist.sum)


class ExporterCollector(Collector):
    def __init__(self, state: State, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        state = self.state
        up = GaugeMetricFamily(P + "up", "1 if the last completed scheduled probe of the endpoint succeeded.", labels=EP_LABELS)
        duration = _histogram(P + "probe_duration_seconds", "Latency of each scheduled probe that got a response.", EP_LABELS)
        probes = CounterMetricFamily(P + "probes", "Scheduled probes by outcome.", labels=[*EP_LABELS, "outcome"])
        codes = CounterMetricFamily(P + "http_responses", "HTTP status codes seen, one per attempt.", labels=[*PE_LABELS, "code"])
        retries = CounterMetricFamily(P + "retries", "Retries made, by reason.", labels=[*PE_LABELS, "reason"])
        last_probe = GaugeMetricFamily(P + "last_probe_timestamp_seconds", "When the last scheduled probe finished (unix seconds).", labels=PE_LABELS)
        last_success = GaugeMetricFamily(P + "last_success_timestamp_seconds", "When the last successful probe finished (unix seconds).", labels=PE_LABELS)
        data_age = GaugeMetricFamily(P + "data_age_seconds", "Age of the newest data at scrape time: the payload's timestamp, else the last success.", labels=PE_LABELS)
        max_age = GaugeMetricFamily(P + "data_max_age_seconds", "The configured freshness bound of the endpoint.", labels=PE_LABELS)
        zscore = GaugeMetricFamily(P + "latency_anomaly_zscore", "z-score of the last latency against the endpoint's recent latencies.", labels=PE_LABELS)
        value = GaugeMetricFamily(P + "value", "Numbers extracted from the last completed probe's payload.", labels=[*PE_LABELS, "name"])
        for ep in state.endpoints():
            ep_labels = [ep.provider, ep.category, ep.name]
            pe_labels = [ep.provider, ep.name]
            if ep.last_completed is not None:
                up.add_metric(ep_labels, 1.0 if ep.last_completed.ok else 0.0)
                last_probe.add_metric(pe_labels, ep.last_completed.finished_at)
            _add_histogram(duration, ep_labels, ep.duration)
            for outcome in Outcome:
                probes.add_metric([*ep_labels, outcome.value], ep.outcomes[outcome])
            for code, n in sorted(ep.codes.items()):
                codes.add_metric([*pe_labels, str(code)], n)
            for reason, n in sorted(ep.retries.items()):
                retries.add_metric([*pe_labels, reason], n)
            if ep.last_success_at is not None:
                last_success.add_metric(pe_labels, ep.last_success_at)
            if (age := ep.data_age(now)) is not None:
                data_age.add_metric(pe_labels, age)
            if ep.max_age is not None:
                max_age.add_metric(pe_labels, ep.max_age)
            if ep.zscore is not None:
                zscore.add_metric(pe_labels, ep.zscore)
            for name, number in ep.values:
                value.add_metric([*pe_labels, name], number)
        yield from (up, duration, probes, codes, retries, last_probe, last_success, data_age, max_age, zscore, value)
        yield from self._providers(state)
        ok = GaugeMetricFamily(P + "config_last_reload_successful", "1 if the last load or reload of providers.yaml worked.")
        ok.add_metric([], 1.0 if state.config_reload_ok else 0.0)
        yield ok
        ok_at = GaugeMetricFamily(P + "config_last_reload_success_timestamp_seconds", "When providers.yaml was last loaded successfully (unix seconds).")
        if state.config_reload_success_at is not None:
            ok_at.add_metric([], state.config_reload_success_at)
        yield ok_at

    def _providers(self, state: State) -> Iterator[Metric]:
        limit = GaugeMetricFamily(P + "rate_limit_limit", "Quota size per scope: a provider header's window, or 'budget' for the exporter's own budget.", labels=["provider", "scope"])
        remaining = GaugeMetricFamily(P + "rate_limit_remaining", "Quota left per scope, as last reported.", labels=["provider", "scope"])
        reset = GaugeMetricFamily(P + "rate_limit_reset_timestamp_seconds", "When the quota resets (unix seconds).", labels=["provider", "scope"])
        circuit = GaugeMetricFamily(P + "circuit_breaker_state", "Circuit breaker state per provider: 1 for the current state.", labels=["provider", "state"])
        status = GaugeMetricFamily(P + "provider_status", "Provider status from its endpoints' last probes: 1 for the current status.", labels=["provider", "category", "status"])
        delay = _histogram(P + "schedule_delay_seconds", "How late each scheduled probe started against its plan.", ["provider"])
        runs = CounterMetricFamily(P + "schedule_runs", "Scheduled runs by result: on_time, late or missed.", labels=["provider", "result"])
        keys = GaugeMetricFamily(P + "key_valid", "1 if the API key in this env var is set and not rejected by the provider.", labels=["provider", "key"])
        info = GaugeMetricFamily(P + "provider_info", "Configured providers.", labels=["provider", "category", "base_url", "requires_key"])
        for p in state.providers.values():
            for scope, q in sorted(p.quotas.items()):
                if q.limit is not None:
                    limit.add_metric([p.name, scope], q.limit)
                if q.remaining is not None:
                    remaining.add_metric([p.name, scope], q.remaining)
                if q.reset_at is not None:
                    reset.add_metric([p.name, scope], q.reset_at)
            for s in CircuitState:
                circuit.add_metric([p.name, s.value], 1.0 if p.circuit is s else 0.0)
            current = p.status()
            for st in ProviderStatus:
                status.add_metric([p.name, p.category, st.value], 1.0 if current is st else 0.0)
            _add_histogram(delay, [p.name], p.schedule_delay)
            for result in ("on_time", "late", "missed"):
                runs.add_metric([p.name, result], p.schedule_runs[result])
            for env, valid in p.keys.items():
                keys.add_metric([p.name, env], 1.0 if valid else 0.0)
            info.add_metric([p.name, p.category, p.spec.base_url, str(p.spec.auth.requires_key).lower()], 1.0)
        yield from (limit, remaining, reset, circuit, status, delay, runs, keys, info)


def build_registry(state: State, clock: Callable[[], float] = time.time, process_metrics: bool = True) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(state, clock))
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
