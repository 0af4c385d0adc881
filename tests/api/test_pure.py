"""The API's small pure functions, tested directly (table-driven)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.config import ConfigError
from exporter.model import (
    Outcome,
    ProbeResult,
    ProviderStatus,
    QuotaObservation,
    RetryReason,
)
from exporter.state import State
from exporter.web.api.auth import cors_origin, ip_allowed, presented_token, token_valid
from exporter.web.api.errors import ApiError
from exporter.web.api.events import EVENT_TYPES, Client, Hub, parse_types
from exporter.web.api.history import (
    ProviderSample,
    Sample,
    align,
    compliance_series,
    health_series,
    promql_selector,
    step_for,
)
from exporter.web.api.instrument import api_metrics
from exporter.web.api.query import enum_param, int_param, paginate
from exporter.web.api.settings import ApiSettings
from exporter.web.api.views import (
    failures_report,
    freshness_status,
    iso,
    log_entry,
    quota_percentage,
    quota_status,
    system_health,
)


@pytest.mark.parametrize(
    ("raw", "value"),
    [(None, 50), ("1", 1), ("1000", 1000), ("0", None), ("1001", None), ("", None), ("abc", None), ("1.5", None), (" 5", None), ("١", None), ("9" * 40, None)],
)
def test_int_param(raw: str | None, value: int | None) -> None:
    query = {} if raw is None else {"per_page": raw}
    if value is None:
        with pytest.raises(ApiError) as e:
            int_param(query, "per_page", 50, 1, 1000)
        assert e.value.status == 400 and e.value.field == "per_page" and "per_page" in e.value.detail
    else:
        assert int_param(query, "per_page", 50, 1, 1000) == value


def test_enum_param() -> None:
    assert enum_param({"status": "ONLINE"}, "status", ProviderStatus) is ProviderStatus.ONLINE
    assert enum_param({"status": ""}, "status", ProviderStatus) is None
    with pytest.raises(ApiError) as e:
        enum_param({"status": "up"}, "status", ProviderStatus)
    assert "online, degraded, offline, unknown" in e.value.detail


@pytest.mark.parametrize(("page", "per_page", "items", "pages"), [(1, 4, [0, 1, 2, 3], 3), (3, 4, [8, 9], 3), (4, 4, [], 3), (1, 100, list(range(10)), 1)])
def test_paginate(page: int, per_page: int, items: list[int], pages: int) -> None:
    p = paginate(list(range(10)), page, per_page)
    assert (p.items, p.total, p.pages) == (items, 10, pages)


@pytest.mark.parametrize(
    ("remote", "allowed", "ok"),
    [
        ("127.0.0.1", "", True),
        ("127.0.0.1", "127.0.0.0/8", True),
        ("127.0.0.1", "10.0.0.0/8,192.168.0.1", False),
        ("::ffff:10.1.2.3", "10.0.0.0/8", True),
        ("::1", "::1", True),
        ("::1", "127.0.0.1", False),
        ("fe80::1%eth0", "fe80::/10", True),
        (None, "10.0.0.0/8", False),
        ("garbage", "10.0.0.0/8", False),
    ],
)
def test_ip_allowed(remote: str | None, allowed: str, ok: bool) -> None:
    nets = [ipaddress.ip_network(x.strip(), strict=False) for x in allowed.split(",") if x.strip()]
    assert ip_allowed(remote, nets) is ok


@pytest.mark.parametrize(
    ("headers", "query", "allow_query", "token"),
    [
        ({"Authorization": "Bearer abc"}, {}, False, "abc"),
        ({"Authorization": "bearer  abc "}, {}, False, "abc"),
        ({"Authorization": "Basic abc"}, {}, False, None),
        ({"X-API-Key": "k1"}, {}, False, "k1"),
        ({}, {"token": "q"}, False, None),
        ({}, {"token": "q"}, True, "q"),
        ({}, {"api_key": "q2"}, True, "q2"),
        ({}, {}, True, None),
    ],
)
def test_presented_token(headers: dict[str, str], query: dict[str, str], allow_query: bool, token: str | None) -> None:
    assert presented_token(headers, query, allow_query) == token


def test_token_valid() -> None:
    assert token_valid("b", ["a", "b"]) and not token_valid("c", ["a", "b"]) and not token_valid(None, ["a"])


@pytest.mark.parametrize(
    ("origin", "allowed", "result"),
    [
        (None, ("*",), None),
        ("https://a.example", (), None),
        ("https://a.example", ("*",), "*"),
        ("https://a.example/", ("https://a.example",), "https://a.example/"),
        ("https://b.example", ("https://a.example",), None),
    ],
)
def test_cors_origin(origin: str | None, allowed: tuple[str, ...], result: str | None) -> None:
    assert cors_origin(origin, allowed) == result


def test_settings_from_env() -> None:
    s = ApiSettings.from_env(
        {
            "API_TOKENS": " token-a, token-b ,",
            "ALLOWED_IPS": "10.0.0.0/8; 127.0.0.1",
            "CORS_ORIGINS": "https://x.example/",
            "PROTECT_METRICS": "yes",
            "PROMETHEUS_URL": "http://prom:9090/",
        }
    )
    assert s.tokens == ("token-a", "token-b") and len(s.allowed_ips) == 2 and s.cors_origins == ("https://x.example",)
    assert s.protect_metrics and s.prometheus_url == "http://prom:9090"
    assert "tokens=" not in repr(s)  # never in a log line
    assert ApiSettings.from_env({}) == ApiSettings()


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as e:
        ApiSettings.from_env({"ALLOWED_IPS": "10.0.0.300", "CORS_ORIGINS": "dash.example", "PROTECT_METRICS": "maybe", "PROMETHEUS_URL": "prom:9090"})
    assert [line.split(":")[0] for line in e.value.errors] == ["ALLOWED_IPS", "CORS_ORIGINS", "PROTECT_METRICS", "PROMETHEUS_URL"]
    with pytest.raises(ConfigError, match="PROTECT_METRICS: needs API_TOKENS"):
        ApiSettings.from_env({"PROTECT_METRICS": "true"})


@pytest.mark.parametrize("value", [",", " ", " , ,", "\t"])
def test_api_tokens_set_without_a_token_refuse_to_start(value: str) -> None:
    """Someone meant to protect the API: starting open would be a silent failure."""
    with pytest.raises(ConfigError) as e:
        ApiSettings.from_env({"API_TOKENS": value})
    [line] = e.value.errors
    assert line.startswith("API_TOKENS: ") and "holds no token" in line


def test_api_tokens_empty_is_unset_and_short_tokens_are_refused() -> None:
    assert ApiSettings.from_env({"API_TOKENS": ""}).auth_enabled is False  # compose files write VAR= for unset
    with pytest.raises(ConfigError, match=r"API_TOKENS: 1 token\(s\) shorter than 4 characters"):
        ApiSettings.from_env({"API_TOKENS": "long-enough-token, abc"})


@pytest.mark.parametrize(
    ("limit", "remaining", "pct", "status"),
    [
        (100, 100, 0.0, "normal"),
        (100, 20, 80.0, "warning"),
        (100, 4, 96.0, "critical"),
        (100, 0, 100.0, "exhausted"),
        (None, 5, None, "unknown"),
        (0, 0, None, "unknown"),
    ],
)
def test_quota(limit: float | None, remaining: float, pct: float | None, status: str) -> None:
    q = QuotaObservation("s", limit, remaining, None)
    assert quota_percentage(q) == pct and quota_status(pct) == status


@pytest.mark.parametrize(("age", "status"), [(None, "unknown"), (10, "fresh"), (80, "aging"), (101, "stale")])
def test_freshness_status(age: float | None, status: str) -> None:
    assert freshness_status(age, 100) == status


@pytest.mark.parametrize(("online", "probed", "health"), [(0, 0, "unknown"), (9, 10, "healthy"), (8, 10, "degraded")])
def test_system_health(online: int, probed: int, health: str) -> None:
    assert system_health(online, probed) == health


def _result(provider: str, outcome: Outcome, t: float, retries: tuple[RetryReason, ...] = ()) -> ProbeResult:
    return ProbeResult(provider, "exchanges", "ping", outcome, t, t, retries=retries, detail="HTTP 503")


def test_failures_report() -> None:
    rs = [_result("a", Outcome.SERVER_ERROR, 1, (RetryReason.SERVER_ERROR,)), _result("b", Outcome.TIMEOUT, 2), _result("a", Outcome.SERVER_ERROR, 3)]
    r = failures_report(rs, limit=2)
    assert r["error_type_distribution"] == {"server_error": 2, "timeout": 1}
    assert r["top_failing_providers"] == [{"provider": "a", "failure_count": 2}, {"provider": "b", "failure_count": 1}]
    assert [f["provider"] for f in r["recent_failures"]] == ["a", "b"] and r["recent_failures"][0]["retry_attempted"] is False
    assert [s["error_type"] for s in r["remediation_suggestions"]] == ["server_error", "timeout"]


def _sample(at: float, a: tuple[Any, ...], b: tuple[Any, ...]) -> Sample:
    return Sample(at, {"a": ProviderSample(*a), "b": ProviderSample(*b)})


def test_history_series() -> None:
    on, off = ProviderStatus.ONLINE, ProviderStatus.OFFLINE
    samples = [
        _sample(0, (on, 0, 0, 0, 0, 0), (on, 0, 0, 0, 0, 0)),
        _sample(60, (on, 4, 4, 4, 0, 0), (on, 4, 4, 3, 1, 0)),
        _sample(120, (on, 4, 4, 4, 0, 0), (off, 4, 8, 3, 1, 4)),
    ]
    h = health_series(samples, since=0)
    assert h["success_rate"] == [None, 100.0, 0.0] and h["online"] == [2, 2, 1] and h["offline"] == [0, 0, 1]
    assert health_series(samples, since=60, provider="a")["success_rate"] == [100.0, None]  # no probes in the last minute
    c = compliance_series(samples, since=0)
    assert c["compliance_percentage"] == [None, 87.5, 0.0] and c["missed"] == [0, 0, 4] and c["late"] == [0, 1, 0]


def test_prometheus_helpers() -> None:
    assert promql_selector(None, 'outcome="success"') == '{outcome="success"}'
    assert promql_selector('we"ird', "") == '{provider="we\\"ird"}'
    assert step_for(1) == 60 and step_for(168) == 2520
    assert align([(0, "1.5"), (60, "NaN"), (120, "x")], [0, 60, 120, 180]) == [1.5, None, None, None]


def test_parse_types() -> None:
    assert parse_types("status_update, ping") == {"status_update", "ping"}
    assert parse_types(list(EVENT_TYPES)) == set(EVENT_TYPES)
    for bad in ("nope", [1], {"a": 1}):
        with pytest.raises(ApiError):
            parse_types(bad)


async def test_hub_drops_oldest_for_a_full_queue() -> None:
    metrics = api_metrics(CollectorRegistry())
    hub = Hub(State(), metrics, queue_size=3)
    client = Client(ws=None, request=None, queue=asyncio.Queue(3))  # type: ignore[arg-type]
    hub.clients.add(client)
    for i in range(5):
        hub.publish("new_log_entry", log_entry(_result("a", Outcome.SUCCESS, float(i))))
    assert [client.queue.get_nowait().data["timestamp"] for _ in range(3)] == [iso(2), iso(3), iso(4)]
    assert metrics.ws_dropped.labels("new_log_entry")._value.get() == 2
    client.types = frozenset({"status_update"})
    hub.publish("ping", {})
    assert client.queue.empty()
