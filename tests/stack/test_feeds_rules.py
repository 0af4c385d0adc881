"""The feeds' alerting rules (prometheus/rules/feeds.rules.yml) with the real promtool:
they load, their unit tests pass, and every alert has its runbook section."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .conftest import FEEDS_RULES_FILE, FEEDS_RULES_TEST_FILE, PROMETHEUS_DIR, REPO, load_rules

pytestmark = pytest.mark.binary

EXPECTED_ALERTS = {"FeedSilent", "FeedReconnecting", "FeedSequenceGaps", "FeedLagging", "FeedPriceFrozen"}
RUNBOOK_PREFIX = "https://github.com/crypto-api-exporter/crypto-api-exporter/blob/main/docs/runbooks.md#"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(FEEDS_RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(FEEDS_RULES_TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_every_rules_file() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert any(FEEDS_RULES_FILE.match(pattern.split("/", 1)[-1]) or pattern.endswith("*.rules.yml") for pattern in config["rule_files"])


def test_alerts_labels_annotations_and_runbooks() -> None:
    rules = [r for r in load_rules(FEEDS_RULES_FILE) if "alert" in r]
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    tested = FEEDS_RULES_TEST_FILE.read_text()
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] == "warning", name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == RUNBOOK_PREFIX + name.lower(), name
        assert re.search(rf"^## {name}$", runbooks, re.M), f"docs/runbooks.md has no section for {name}"
        assert f"alertname: {name}" in tested, f"no promtool test for {name}"
