"""Issue 11's pure parts: each status format's reading, a maintenance report's meaning
now, the frozen-value memory (and its survival of a reload), and the config rules of
the `status` kind."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import yaml

from exporter.config import ConfigError, Endpoint, ExtractedValue, Provider, StatusFormat, compile_jmespath, parse_config
from exporter.frozen import ValueTracker
from exporter.model import Category, Maintenance, MaintenanceState
from exporter.probes.status import StatusPayloadError, parse

NONE, SCHEDULED, ONGOING = MaintenanceState.NONE, MaintenanceState.SCHEDULED, MaintenanceState.ONGOING
B, E = 1_767_225_600, 1_767_229_200  # a window's begin and end (unix seconds)


def _window(state: str) -> dict[str, Any]:
    return {"title": "upgrade", "state": state, "begin": str(B * 1000), "end": str(E * 1000), "href": ""}


def _sp(status: str | None, component: str = "operational") -> dict[str, Any]:
    maint = [{"name": "db", "status": status, "scheduled_for": "2026-01-01T00:00:00.000Z", "scheduled_until": "2026-01-01T01:00:00.000Z"}] if status else []
    return {"page": {}, "status": {"indicator": "none"}, "components": [{"name": "API", "status": component}], "scheduled_maintenances": maint}


# (format, body, state, start, end)
READINGS = [
    (StatusFormat.BINANCE, {"status": 0, "msg": "normal"}, NONE, None, None),
    (StatusFormat.BINANCE, {"status": 1, "msg": "system_maintenance"}, ONGOING, None, None),
    (StatusFormat.KRAKEN, {"error": [], "result": {"status": "online", "timestamp": "2026-01-01T00:00:00Z"}}, NONE, None, None),
    (StatusFormat.KRAKEN, {"error": [], "result": {"status": "maintenance"}}, ONGOING, None, None),
    (StatusFormat.KRAKEN, {"error": [], "result": {"status": "cancel_only"}}, ONGOING, None, None),
    (StatusFormat.KRAKEN, {"error": [], "result": {"status": "post_only"}}, ONGOING, None, None),
    (StatusFormat.OKX, {"code": "0", "msg": "", "data": []}, NONE, None, None),
    (StatusFormat.OKX, {"code": "0", "data": [_window("scheduled")]}, SCHEDULED, B, E),
    (StatusFormat.OKX, {"code": "0", "data": [_window("ongoing")]}, ONGOING, B, E),
    (StatusFormat.OKX, {"code": "0", "data": [_window("pre_open")]}, ONGOING, B, E),
    (StatusFormat.OKX, {"code": "0", "data": [_window("completed"), _window("canceled")]}, NONE, None, None),
    (StatusFormat.OKX, {"code": "0", "data": [_window("scheduled"), _window("ongoing")]}, ONGOING, B, E),
    (StatusFormat.BYBIT, {"retCode": 0, "retMsg": "OK", "result": {"list": []}}, NONE, None, None),
    (StatusFormat.BYBIT, {"retCode": 0, "result": {"list": [_window("ongoing")]}}, ONGOING, B, E),
    (StatusFormat.STATUSPAGE, _sp(None), NONE, None, None),
    (StatusFormat.STATUSPAGE, _sp("scheduled"), SCHEDULED, B, E),
    (StatusFormat.STATUSPAGE, _sp("in_progress"), ONGOING, B, E),
    (StatusFormat.STATUSPAGE, _sp("verifying"), ONGOING, B, E),
    (StatusFormat.STATUSPAGE, _sp("completed"), NONE, None, None),
    (StatusFormat.STATUSPAGE, _sp(None, component="under_maintenance"), ONGOING, None, None),
]


@pytest.mark.parametrize(("fmt", "body", "state", "start", "end"), READINGS)
def test_each_format_is_read(fmt: StatusFormat, body: Any, state: MaintenanceState, start: float | None, end: float | None) -> None:
    report = parse(fmt, json.dumps(body).encode())
    assert (report.state, report.start, report.end) == (state, start, end)


# (format, body, what the error says)
REFUSED = [
    (StatusFormat.BINANCE, {"status": 2}, "expected 0 or 1"),
    (StatusFormat.BINANCE, {"status": True}, "expected 0 or 1"),
    (StatusFormat.BINANCE, [], "body: expected an object"),
    (StatusFormat.KRAKEN, {"error": ["EService:Unavailable"], "result": {}}, "EService:Unavailable"),
    (StatusFormat.KRAKEN, {"error": [], "result": {"status": "sleeping"}}, "result.status"),
    (StatusFormat.OKX, {"code": "50001", "msg": "busy", "data": []}, "code '50001'"),
    (StatusFormat.OKX, {"code": "0", "data": [{"state": "exploded"}]}, "data[0].state: unknown state"),
    (StatusFormat.OKX, {"code": "0", "data": {"state": "ongoing"}}, "data: expected a list"),
    (StatusFormat.BYBIT, {"retCode": 10006, "retMsg": "Too many visits!"}, "retCode 10006"),
    (StatusFormat.STATUSPAGE, {"page": {}}, "status: expected an object"),
    (StatusFormat.STATUSPAGE, {"status": {}, "scheduled_maintenances": [1]}, "scheduled_maintenances[0]: expected an object"),
]


@pytest.mark.parametrize(("fmt", "body", "says"), REFUSED)
def test_a_payload_of_another_shape_is_refused_with_its_reason(fmt: StatusFormat, body: Any, says: str) -> None:
    with pytest.raises(StatusPayloadError) as e:
        parse(fmt, json.dumps(body).encode())
    assert says in str(e.value)


def test_garbage_is_refused() -> None:
    with pytest.raises(StatusPayloadError, match="not JSON"):
        parse(StatusFormat.STATUSPAGE, b"\x00<html>502</html>")


@pytest.mark.parametrize(
    ("report", "now", "active"),
    [
        (Maintenance(ONGOING), B, True),
        (Maintenance(ONGOING, B, E), E + 600, True),  # an overrun the source still reports
        (Maintenance(SCHEDULED, B, E), B - 1, False),
        (Maintenance(SCHEDULED, B, E), B, True),  # begun by our clock before the next poll
        (Maintenance(SCHEDULED, B, E), E, False),
        (Maintenance(SCHEDULED, None, E), B, False),  # no start: only announced
        (Maintenance(NONE), B, False),
    ],
)
def test_when_a_report_means_maintenance_now(report: Maintenance, now: float, active: bool) -> None:
    assert report.active(now) is active


# ---------------------------------------------------------------- frozen values


def _endpoint(max_unchanged: float | None = 180.0, path: str = "price") -> Endpoint:
    return Endpoint("ticker", values=(ExtractedValue("btc_usd", compile_jmespath(path), 1.0, max_unchanged),))


def _provider(ep: Endpoint) -> Provider:
    return Provider("p", Category.EXCHANGES, "https://p.test", (ep,))


def test_a_value_unchanged_beyond_its_bound_is_frozen_and_a_change_resets_it() -> None:
    ep, values = _endpoint(), ValueTracker()
    assert values.observe(ep, [("btc_usd", 100.0)], 1000.0) is None
    assert values.observe(ep, [("btc_usd", 100.0)], 1180.0) is None  # exactly the bound
    assert values.observe(ep, [("btc_usd", 100.0)], 1181.0) == "value btc_usd unchanged at 100 for 181s (max_unchanged 180s)"
    assert list(values.last_changes()) == [("ticker", "btc_usd", 1000.0)]
    assert values.observe(ep, [("btc_usd", 100.5)], 1200.0) is None
    assert list(values.last_changes()) == [("ticker", "btc_usd", 1200.0)]


def test_a_value_without_a_bound_is_only_remembered() -> None:
    ep, values = _endpoint(max_unchanged=None), ValueTracker()
    values.observe(ep, [("btc_usd", 1.0)], 0.0)
    assert values.observe(ep, [("btc_usd", 1.0)], 1e6) is None
    assert list(values.last_changes()) == [("ticker", "btc_usd", 0.0)]


def test_the_memory_survives_a_reload_only_while_the_value_spec_is_unchanged() -> None:
    ep, values = _endpoint(), ValueTracker()
    values.observe(ep, [("btc_usd", 100.0)], 1000.0)
    same = values.carried_to(_provider(_endpoint()))  # an equal spec, a new object
    assert same.observe(_endpoint(), [("btc_usd", 100.0)], 1200.0) is not None
    for changed in (_endpoint(max_unchanged=600.0), _endpoint(path="last")):
        fresh = values.carried_to(_provider(changed))
        assert list(fresh.last_changes()) == []
        assert fresh.observe(changed, [("btc_usd", 100.0)], 1200.0) is None
    assert list(values.carried_to(_provider(replace(ep, values=()))).last_changes()) == []


# ---------------------------------------------------------------- config


def _errors(endpoint: str) -> list[str]:
    text = f"providers: [{{name: p, category: exchanges, base_url: 'https://p.test', endpoints: [{endpoint}]}}]"
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_load(text), env={})
    return e.value.errors


@pytest.mark.parametrize(
    ("endpoint", "error"),
    [
        (
            "{name: s, kind: status, path: /s}",
            "providers[p].endpoints[s].status: kind: status needs a status mapping with its format, e.g. {format: statuspage}",
        ),
        ("{name: s, path: /s, status: {format: okx}}", "providers[p].endpoints[s].status: a status source needs kind: status"),
        (
            "{name: s, kind: status, path: /s, status: {format: okx}, values: [{name: v, path: x}]}",
            "providers[p].endpoints[s].kind: kind: status reads the source's own format: no values, assertions or freshness",
        ),
        (
            "{name: s, kind: status, path: /s, status: {format: okx}}, {name: t, kind: status, path: /t, status: {format: okx}}",
            "providers[p].endpoints[t].kind: a provider has at most one kind: status endpoint (endpoints[0] is one)",
        ),
        (
            "{name: s, kind: status, path: /s, status: {format: atom}}",
            "providers[p].endpoints[s].status.format: invalid value 'atom' (one of: binance, kraken, okx, bybit, statuspage)",
        ),
        (
            "{name: t, path: /t, values: [{name: v, path: x, max_unchanged: soon}]}",
            "providers[p].endpoints[t].values[0].max_unchanged: invalid duration 'soon' (use e.g. 30s, 5m, 1h)",
        ),
    ],
)
def test_status_and_max_unchanged_config_errors(endpoint: str, error: str) -> None:
    assert _errors(endpoint) == ["<memory>: " + error]


def test_status_and_max_unchanged_load() -> None:
    text = """
providers:
  - name: p
    category: exchanges
    base_url: https://api.p.test
    endpoints:
      - {name: status, kind: status, path: /api/v2/summary.json, status: {format: statuspage, base_url: "https://status.p.test"}}
      - {name: t, path: /t, values: [{name: btc_usd, path: price, max_unchanged: 3m}]}
"""
    p = parse_config(yaml.safe_load(text), env={}).providers[0]
    status = p.endpoint("status").status
    assert status is not None and (status.format, status.base_url) == (StatusFormat.STATUSPAGE, "https://status.p.test")
    assert p.endpoint("t").values[0].max_unchanged == 180.0
