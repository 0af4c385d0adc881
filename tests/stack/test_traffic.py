"""The API traffic stack (issue 15): promtool on prometheus/rules/traffic.rules.yml and
its unit tests, and end to end a real Prometheus with those rules scraping the
example aiohttp app (examples/aiohttp_app.py, rate limiter on) on loopback, where every
query of the generated "API traffic" dashboard and every recording rule runs and
returns data."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.binaries import require_binary

from .conftest import GRAFANA_DIR, PROMETHEUS_DIR, REPO
from .helpers import free_port, http_json, running, wait_until
from .promql import fill, panels
from .test_prometheus import run

TRAFFIC_RULES = PROMETHEUS_DIR / "rules" / "traffic.rules.yml"
TRAFFIC_TESTS = PROMETHEUS_DIR / "tests" / "traffic_test.yml"
RULES = [{**rule, "group": g["name"]} for g in yaml.safe_load(TRAFFIC_RULES.read_text())["groups"] for rule in g["rules"]]
ALERTS = {"ApiErrorBudgetBurn", "ApiErrorBudgetBurnSlow", "ApiLatencyBudgetBurn", "ApiLatencyBudgetBurnSlow"}


def test_promtool_checks_the_traffic_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(TRAFFIC_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


def test_promtool_runs_the_traffic_rule_tests(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(TRAFFIC_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_slo_alert_is_tested_and_documented() -> None:
    assert {r["alert"] for r in RULES if "alert" in r} == ALERTS
    tested = {case["alertname"] for t in yaml.safe_load(TRAFFIC_TESTS.read_text())["tests"] for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert tested == ALERTS
    doc = (REPO / "docs" / "traffic.md").read_text()
    for rule in RULES:
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert f"\n## {anchor}" in doc.lower(), anchor


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((GRAFANA_DIR / "dashboards" / "api-traffic.json").read_text())
    return [(panel["title"], fill(t["expr"], {"job": ".*"})) for panel in panels(dashboard) for t in panel.get("targets", [])]


def drive(app: str, stop: threading.Event) -> None:
    """A known mix, from several made-up clients, until stopped; a burst from one
    client to trip the limiter (40 at once)."""
    paths = [("GET", "/items"), ("GET", "/items/7"), ("GET", "/items/x"), ("GET", "/boom"), ("GET", "/no/such"), ("POST", "/orders")]
    while not stop.is_set():
        for method, path in paths:
            request = urllib.request.Request(app + path, method=method, data=b"{}" if method == "POST" else None)
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=5).close()
        stop.wait(0.2)


@pytest.fixture
def prometheus_on_example(tmp_path: Path) -> Iterator[str]:
    prometheus_bin = require_binary("prometheus")
    app_port, prom_port = free_port(), free_port()
    app = f"http://127.0.0.1:{app_port}"
    prometheus = f"http://127.0.0.1:{prom_port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(TRAFFIC_RULES)],
        "scrape_configs": [{"job_name": "api", "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(
                [sys.executable, "-m", "examples.aiohttp_app", "--port", str(app_port), "--rate-limit"],
                tmp_path / "app.log",
                f"{app}/metrics",
            )
        )
        stack.enter_context(
            running(
                [
                    prometheus_bin,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp_path / "prometheus.log",
                f"{prometheus}/-/ready",
            )
        )
        driver = threading.Thread(target=drive, args=(app, stop), daemon=True)
        driver.start()
        stack.callback(driver.join, 10)
        stack.callback(stop.set)
        # The limiter's burst: 60 at once from this client, 40 pass.
        for _ in range(60):
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(app + "/items", timeout=5).close()
        yield prometheus


def query(prometheus: str, expr: str) -> list[dict]:
    answer = http_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.binary
@pytest.mark.timeout(120)
def test_dashboard_and_rules_return_data_on_a_real_prometheus(prometheus_on_example: str) -> None:
    prometheus = prometheus_on_example
    records = [r["record"] for r in RULES if "record" in r]
    # Rate windows need two scrapes and the rules an evaluation after them.
    wait_until(lambda: all(query(prometheus, r) for r in records), timeout=60, what="every recording rule to have a value")
    time.sleep(2)  # one more scrape of the 429s and 5xx the driver keeps making (real processes: no virtual clock)
    groups = http_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not unhealthy, unhealthy
    empty = [title for title, expr in dashboard_queries() if not query(prometheus, expr)]
    assert not empty, f"API traffic panels without data: {empty}"
    routes = {s["metric"].get("http_route", "") for s in query(prometheus, "job_route:http_server_requests:rate5m")}
    assert routes == {"/items", "/items/{item_id}", "/boom", "/orders", ""}
    limited = query(prometheus, "sum(http_server_rate_limited_requests_total)")
    assert float(limited[0]["value"][1]) >= 20
    errors = query(prometheus, "job:http_server_request_error_ratio:rate5m")
    assert 0 < float(errors[0]["value"][1]) < 1
