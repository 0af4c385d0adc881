"""Grafana provisioning and the generated dashboards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import GRAFANA_DIR, REPO
from .promql import allowed_metric_names, dashboard_files, dashboard_queries, metric_names, panels

DATASOURCE_UID = "crypto-api-prometheus"
EXPECTED_DASHBOARDS = {
    "crypto-api-overview",
    "crypto-api-provider",
    "crypto-api-rate-limits",
    "crypto-api-freshness",
    "crypto-api-failures",
    "crypto-api-exporter",
    "api-traffic",  # issue 15: the user's own API (exporter.traffic)
    "crypto-api-feeds",
    "crypto-api-chains",
}


def load(name: str) -> dict:
    return json.loads((GRAFANA_DIR / "dashboards" / f"{name}.json").read_text())


def test_generated_dashboards_are_up_to_date() -> None:
    """Regenerates with grafana-foundation-sdk and fails on any diff."""
    result = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "generate.py"), "--check"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_sdk_pinned_exactly_in_dev_dependencies() -> None:
    import tomllib

    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = [d for d in dev if d.startswith("grafana-foundation-sdk")]
    assert pins and "==" in pins[0] and "!" not in pins[0], pins


def test_datasource_provisioned_with_fixed_uid() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = doc["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "crypto-api.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_expected_dashboards_with_unique_uids() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in dashboard_files()]
    assert sorted(uids) == sorted(EXPECTED_DASHBOARDS)


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.stem)
def test_every_panel_and_query_names_the_provisioned_datasource(path) -> None:
    dashboard = json.loads(path.read_text())
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    for variable in dashboard.get("templating", {}).get("list", []):
        assert variable["datasource"]["uid"] == DATASOURCE_UID


def test_provider_detail_has_provider_and_endpoint_variables() -> None:
    dashboard = load("provider-detail")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"provider", "endpoint"}
    assert "$provider" in variables["endpoint"]["query"]["query"], "endpoints of the chosen provider"
    assert variables["endpoint"]["includeAll"] and variables["endpoint"]["allValue"] == ".*"
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            assert "$provider" in target["expr"], f"{panel['title']} ignores $provider"


def test_overview_has_status_grid_counts_heatmap_and_outcomes() -> None:
    dashboard = load("overview")
    by_title = {p["title"]: p for p in panels(dashboard)}
    for status in ("online", "degraded", "offline"):
        assert f"Providers {status}" in by_title
    assert by_title["Provider status"]["type"] == "stat"
    assert by_title["Probe latency heatmap"]["type"] == "heatmap"
    assert "outcome" in by_title["Probe outcomes"]["targets"][0]["expr"]


@pytest.mark.parametrize("query", dashboard_queries(), ids=lambda q: f"{q.dashboard}/{q.panel}")
def test_queries_use_only_known_metrics(query) -> None:
    unknown = metric_names(query.expr) - allowed_metric_names()
    assert not unknown, f"not in the metrics contract nor the recording rules: {unknown}"


def test_all_panel_queries_parse(promtool: str, tmp_path) -> None:
    """promtool parses each query as a recording rule expression (the e2e test also
    runs them on a real Prometheus)."""
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dashboard:query_{i}:test", "expr": q.expr} for i, q in enumerate(dashboard_queries())],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
