"""State written from ProbeResults, read by the collector: exact samples."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config, parse_config
from exporter.metrics import Exposition, build_registry
from exporter.model import Outcome, ProbeResult, QuotaObservation, RetryReason, ScheduleRun
from exporter.runtime import Runtimes
from exporter.state import State

NOW = 1_790_000_000.0


def make_config(endpoints: tuple[str, ...] = ("ping", "price"), keys: dict[str, str] | None = None) -> Config:
    eps = [{"name": n} for n in endpoints]
    if "price" in endpoints:
        eps[endpoints.index("price")] = {"name": "price", "freshness": {"path": "ts", "max_age": "2m"}}
    data = {
        "providers": [
            {
                "name": "coingecko",
                "category": "market_data",
                "base_url": "https://api.coingecko.com/api/v3",
                "auth": {"type": "header", "name": "x-cg-demo-api-key", "env": ["CG_1", "CG_2"]},
                "rate_limit": {"budget": {"requests": 1000, "per": "1h"}},
                "endpoints": eps,
            }
        ]
    }
    return parse_config(data, env=keys if keys is not None else {"CG_1": "k1-value"})


def result(endpoint: str, outcome: Outcome, **kw: object) -> ProbeResult:
    defaults: dict[str, object] = {"started_at": NOW - 1, "finished_at": NOW, "duration": 0.2, "status_code": 200, "attempts": 1, "http_codes": (200,)}
    defaults.update(kw)
    return ProbeResult("coingecko", "market_data", endpoint, outcome, **defaults)  # type: ignore[arg-type]


def apply(s: State, config: Config) -> State:
    """Apply `config` as the composition root does: runtimes first, the store reads them."""
    runtimes = getattr(s, "_test_runtimes", None) or Runtimes()
    runtimes.apply(config)
    s.apply_config(config, runtimes)
    s._test_runtimes = runtimes  # type: ignore[attr-defined]
    return s


@pytest.fixture
def state() -> State:
    return apply(State(), make_config())


def sample(state: State, name: str, labels: dict[str, str], now: float = NOW) -> float | None:
    text = Exposition(state, build_registry(process_metrics=False), clock=lambda: now).render().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


EP = {"provider": "coingecko", "category": "market_data", "endpoint": "ping"}
PE = {"provider": "coingecko", "endpoint": "ping"}


def test_success_and_failure_samples(state: State) -> None:
    state.record(result("ping", Outcome.SUCCESS))
    state.record(result("ping", Outcome.SERVER_ERROR, status_code=503, http_codes=(503, 503), retries=(RetryReason.SERVER_ERROR,), finished_at=NOW + 10))
    assert sample(state, "crypto_api_up", EP) == 0
    assert sample(state, "crypto_api_probes_total", {**EP, "outcome": "success"}) == 1
    assert sample(state, "crypto_api_probes_total", {**EP, "outcome": "server_error"}) == 1
    assert sample(state, "crypto_api_probes_total", {**EP, "outcome": "timeout"}) == 0
    assert sample(state, "crypto_api_http_responses_total", {**PE, "code": "503"}) == 2
    assert sample(state, "crypto_api_retries_total", {**PE, "reason": "server_error"}) == 1
    assert sample(state, "crypto_api_last_probe_timestamp_seconds", PE) == NOW + 10
    assert sample(state, "crypto_api_last_success_timestamp_seconds", PE) == NOW
    assert sample(state, "crypto_api_probe_duration_seconds_count", EP) == 2
    assert sample(state, "crypto_api_probe_duration_seconds_bucket", {**EP, "le": "0.25"}) == 2
    assert sample(state, "crypto_api_probe_duration_seconds_bucket", {**EP, "le": "0.1"}) == 0


def test_data_age_is_computed_at_scrape_time(state: State) -> None:
    state.record(result("ping", Outcome.SUCCESS))
    state.record(result("price", Outcome.STALE, data_timestamp=NOW - 600))
    assert sample(state, "crypto_api_data_age_seconds", PE, now=NOW + 5) == 5
    price = {"provider": "coingecko", "endpoint": "price"}
    assert sample(state, "crypto_api_data_age_seconds", price, now=NOW + 5) == 605
    assert sample(state, "crypto_api_data_max_age_seconds", price) == 120
    assert sample(state, "crypto_api_data_max_age_seconds", PE) is None


def test_skipped_probes_count_but_do_not_change_up(state: State) -> None:
    state.record(result("ping", Outcome.SUCCESS))
    state.record(result("ping", Outcome.BUDGET_EXHAUSTED, duration=None, status_code=None, attempts=0, http_codes=()))
    assert sample(state, "crypto_api_up", EP) == 1
    assert sample(state, "crypto_api_probes_total", {**EP, "outcome": "budget_exhausted"}) == 1


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ((), "unknown"),
        ((Outcome.SUCCESS, Outcome.SUCCESS), "online"),
        ((Outcome.SUCCESS, Outcome.STALE), "degraded"),
        ((Outcome.SUCCESS, Outcome.TIMEOUT), "degraded"),
        ((Outcome.TIMEOUT, Outcome.CIRCUIT_OPEN), "offline"),
        ((Outcome.RATE_LIMITED, Outcome.RATE_LIMITED), "degraded"),
    ],
)
def test_provider_status(state: State, outcomes: tuple[Outcome, ...], status: str) -> None:
    for ep, outcome in zip(("ping", "price"), outcomes, strict=False):
        state.record(result(ep, outcome))
    for s in ("online", "degraded", "offline", "unknown"):
        assert sample(state, "crypto_api_provider_status", {"provider": "coingecko", "category": "market_data", "status": s}) == (1 if s == status else 0)


def test_slow_success_degrades(state: State) -> None:
    state.record(result("ping", Outcome.SUCCESS, slow=True))
    assert state.providers["coingecko"].status().value == "degraded"


def test_quotas_keys_breaker_values_and_schedule(state: State) -> None:
    state.record(
        result(
            "price",
            Outcome.SUCCESS,
            quotas=(QuotaObservation("minute", 30, 12, NOW + 40), QuotaObservation("budget", 1000, 998, NOW + 3600)),
            values=(("btc_usd", 97000.5),),
        )
    )
    # Breaker and keys are the runtime's: /metrics reads them there.
    runtime = state.providers["coingecko"].runtime
    runtime.keys.reject(runtime.keys.keys[0])
    for _ in range(5):
        runtime.breaker.record(Outcome.SERVER_ERROR, 0.0)
    runtime.breaker.allow(3600.0)
    state.record_schedule(ScheduleRun("coingecko", "price", 0.002, "on_time"))
    state.record_schedule(ScheduleRun("coingecko", "price", None, "missed"))
    pv = {"provider": "coingecko"}
    assert sample(state, "crypto_api_rate_limit_remaining", {**pv, "scope": "minute"}) == 12
    assert sample(state, "crypto_api_rate_limit_limit", {**pv, "scope": "budget"}) == 1000
    # The budget is read live from the runtime (nothing taken here), not from the result.
    assert sample(state, "crypto_api_rate_limit_remaining", {**pv, "scope": "budget"}) == 1000
    assert sample(state, "crypto_api_rate_limit_reset_timestamp_seconds", {**pv, "scope": "minute"}) == NOW + 40
    assert sample(state, "crypto_api_key_valid", {**pv, "key": "CG_1"}) == 0
    assert sample(state, "crypto_api_key_valid", {**pv, "key": "CG_2"}) is None  # not set: no key, no series (no ApiKeyInvalid)
    assert sample(state, "crypto_api_circuit_breaker_state", {**pv, "state": "half_open"}) == 1
    assert sample(state, "crypto_api_circuit_breaker_state", {**pv, "state": "closed"}) == 0
    assert sample(state, "crypto_api_value", {**pv, "endpoint": "price", "name": "btc_usd"}) == 97000.5
    assert sample(state, "crypto_api_schedule_runs_total", {**pv, "result": "on_time"}) == 1
    assert sample(state, "crypto_api_schedule_runs_total", {**pv, "result": "missed"}) == 1
    assert sample(state, "crypto_api_schedule_delay_seconds_count", pv) == 1
    # A failed probe hides the old price rather than showing it as current.
    state.record(result("price", Outcome.TIMEOUT, duration=None, status_code=None, http_codes=()))
    assert sample(state, "crypto_api_value", {**pv, "endpoint": "price", "name": "btc_usd"}) is None


def test_an_unset_key_env_has_no_series_and_a_set_one_is_valid_before_any_probe() -> None:
    # Unset is not rejected: a 0 would fire ApiKeyInvalid for every optional key left
    # unset and every rotation slot not used (issue 13: quiet when unconfigured).
    s = apply(State(), make_config(keys={"CG_2": "only-second"}))
    assert sample(s, "crypto_api_key_valid", {"provider": "coingecko", "key": "CG_1"}) is None
    assert sample(s, "crypto_api_key_valid", {"provider": "coingecko", "key": "CG_2"}) == 1


def test_reload_drops_removed_endpoints_and_keeps_counters(state: State) -> None:
    state.record(result("ping", Outcome.SUCCESS))
    state.record(result("price", Outcome.SUCCESS))
    apply(state, make_config(endpoints=("ping",)))
    assert sample(state, "crypto_api_probes_total", {**EP, "outcome": "success"}) == 1
    assert sample(state, "crypto_api_up", {**EP, "endpoint": "price"}) is None
    assert sample(state, "crypto_api_probes_total", {**EP, "endpoint": "price", "outcome": "success"}) is None
    # A late result of a removed endpoint is dropped, not resurrected.
    state.record(result("price", Outcome.SUCCESS))
    assert sample(state, "crypto_api_up", {**EP, "endpoint": "price"}) is None


def test_latency_zscore_flags_a_spike(state: State) -> None:
    for i in range(20):
        state.record(result("ping", Outcome.SUCCESS, duration=0.100 + 0.001 * (i % 3)))
    state.record(result("ping", Outcome.SUCCESS, duration=0.500))
    z = sample(state, "crypto_api_latency_anomaly_zscore", PE)
    assert z is not None and z > 10


def test_config_reload_gauges(state: State) -> None:
    state.record_reload(True, NOW)
    state.record_reload(False, NOW + 5)
    assert sample(state, "crypto_api_config_last_reload_successful", {}) == 0
    assert sample(state, "crypto_api_config_last_reload_success_timestamp_seconds", {}) == NOW


def test_provider_info_never_carries_a_key() -> None:
    data = {
        "providers": [
            {
                "name": "infura",
                "category": "rpc_nodes",
                "base_url": "https://mainnet.infura.io/v3/{key}",
                "auth": {"type": "path", "env": ["INFURA_API_KEY"]},
                "endpoints": [{"name": "block_number", "method": "POST", "json": {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1}}],
            }
        ]
    }
    s = apply(State(), parse_config(data, env={"INFURA_API_KEY": "supersecretinfura"}))
    labels = {"provider": "infura", "category": "rpc_nodes", "base_url": "https://mainnet.infura.io/v3/{key}", "requires_key": "true", "enabled": "true"}
    assert sample(s, "crypto_api_provider_info", labels) == 1


def test_incremental_status_matches_a_full_scan() -> None:
    import random

    from exporter.model import ProviderStatus

    rng = random.Random(3)
    s = apply(State(), make_config(endpoints=("ping", "price")))
    ps = s.providers["coingecko"]
    for i in range(500):
        outcome = rng.choice(list(Outcome))
        s.record(result(rng.choice(("ping", "price")), outcome, slow=rng.random() < 0.2))
        if i == 250:  # a reload keeps the endpoint states; the counts must follow
            apply(s, make_config(endpoints=("ping", "price")))
            ps = s.providers["coingecko"]
        probed = [e for e in ps.endpoints.values() if e.last is not None]
        expected = (
            ProviderStatus.UNKNOWN
            if not probed
            else ProviderStatus.ONLINE
            if all(e.healthy for e in probed)
            else ProviderStatus.OFFLINE
            if all(e.failing for e in probed)
            else ProviderStatus.DEGRADED
        )
        assert ps.status() is expected


async def test_streamed_rendering_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter import metrics

    monkeypatch.setattr(metrics, "STREAM_CHUNK", 4096)
    s = apply(State(), make_config(endpoints=tuple(f"e{i}" for i in range(600))))
    for i in range(600):
        s.record(result(f"e{i}", Outcome.SUCCESS if i % 3 else Outcome.TIMEOUT, values=(("v", float(i)),)))
    expo = Exposition(s, build_registry(process_metrics=False), clock=lambda: NOW)
    pieces: list[bytes] = []

    async def write(data: bytes) -> None:
        pieces.append(data)

    await expo.stream(write)
    assert len(pieces) > 10  # it really went out in pieces
    assert b"".join(pieces) == expo.render()


def test_latency_window_matches_a_direct_computation() -> None:
    import random
    import statistics

    from exporter.state import ZSCORE_WINDOW, LatencyWindow

    rng = random.Random(5)
    window, history = LatencyWindow(), []
    for _ in range(3 * ZSCORE_WINDOW + 17):
        value = rng.uniform(0.05, 0.3)
        z = window.zscore_and_add(value)
        recent = history[-ZSCORE_WINDOW:]
        if len(recent) >= 10:
            expected = (value - statistics.fmean(recent)) / max(statistics.stdev(recent), 0.001)
            assert z == pytest.approx(expected, rel=1e-6, abs=1e-6)
        else:
            assert z is None
        history.append(value)


def test_health_score_weighs_slow_successes_half(state: State) -> None:
    for outcome, slow in ((Outcome.SUCCESS, False), (Outcome.SUCCESS, True), (Outcome.TIMEOUT, False), (Outcome.SUCCESS, False)):
        state.record(result("ping", outcome, slow=slow))
    state.record(result("ping", Outcome.CIRCUIT_OPEN, duration=None, status_code=None, attempts=0, http_codes=()))
    assert state.providers["coingecko"].endpoints["ping"].health_score() == pytest.approx((1 + 0.5 + 0 + 1) / 4)
