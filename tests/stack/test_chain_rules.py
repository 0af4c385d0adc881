"""prometheus/rules/chains.rules.yml (issue 11) with the real promtool: it loads, its
promtool unit tests pass, every alert follows the house conventions and has a runbook
section, and each is unit tested silent just before `for:` runs out."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .conftest import CHAIN_RULES_FILE, CHAIN_RULES_TEST_FILE, REPO, load_chain_rules

pytestmark = pytest.mark.binary

EXPECTED = {"ChainHeadLagging", "ChainHeadStuck", "RpcWrongChain", "ChainHeadsDiverged"}
CHAIN_ALERTS_NOT_ABOUT_A_PROVIDER = {"ChainHeadsDiverged"}  # about a chain: `chain` and a static category
RUNBOOK_PREFIX = "https://github.com/crypto-api-exporter/crypto-api-exporter/blob/main/docs/runbooks.md#"
DURATION = re.compile(r"^(?:(\d+)m)?(?:(\d+)s)?$")


def seconds(duration: str) -> int:
    match = DURATION.fullmatch(duration)
    assert match and duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_promtool_checks_the_chain_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(CHAIN_RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_chain_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_chain_rules_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(CHAIN_RULES_TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_exactly_the_chain_alerts() -> None:
    assert {r["alert"] for r in load_chain_rules() if "alert" in r} == EXPECTED


@pytest.mark.parametrize("rule", [r for r in load_chain_rules() if "alert" in r], ids=lambda r: r["alert"])
def test_alert_conventions(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" not in annotations["summary"] and "{{" in annotations["description"]
    assert annotations["runbook_url"] == RUNBOOK_PREFIX + rule["alert"].lower()
    assert seconds(rule["for"]) > 0
    if rule["alert"] in CHAIN_ALERTS_NOT_ABOUT_A_PROVIDER:
        assert rule["labels"]["category"] == "rpc_nodes"
    else:
        assert "group_left (category) provider:crypto_api_provider_info:max" in rule["expr"]


def test_every_chain_alert_has_a_runbook_section() -> None:
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", runbooks, re.M)}
    for alert in EXPECTED:
        assert alert.lower() in anchors, alert


def test_every_chain_alert_is_tested_silent_then_firing_with_full_labels() -> None:
    doc = yaml.safe_load(CHAIN_RULES_TEST_FILE.read_text())
    tests = {t["name"]: t for t in doc["tests"]}
    rules = {r["alert"]: r for r in load_chain_rules() if "alert" in r}
    for alert in EXPECTED:
        cases = [c for c in tests[alert]["alert_rule_test"] if c["alertname"] == alert]
        first = next(i for i, c in enumerate(cases) if c["exp_alerts"])
        assert first > 0 and not cases[first - 1]["exp_alerts"], alert
        step = seconds(cases[first]["eval_time"]) - seconds(cases[first - 1]["eval_time"])
        assert step == seconds(tests[alert]["interval"]), alert
        for exp in cases[first]["exp_alerts"]:
            assert {"severity", "category"} <= set(exp["exp_labels"]), alert
            if alert not in CHAIN_ALERTS_NOT_ABOUT_A_PROVIDER:
                assert {"provider", "endpoint", "chain"} <= set(exp["exp_labels"]), alert
            assert set(exp["exp_annotations"]) == {"summary", "description", "runbook_url"}
        assert rules[alert]["for"]
    tested = " ".join(c["expr"] for t in doc["tests"] for c in t.get("promql_expr_test", []))
    for rule in load_chain_rules():
        if "record" in rule:
            assert rule["record"] in tested, rule["record"]
