"""Shared paths and binary lookups for the stack-as-code tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.binaries import require_binary

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "crypto_api.rules.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "tests" / "rules_test.yml"
FEEDS_RULES_FILE = PROMETHEUS_DIR / "rules" / "feeds.rules.yml"  # feeds (docs/feeds.md)
FEEDS_RULES_TEST_FILE = PROMETHEUS_DIR / "tests" / "feeds_test.yml"
# ---- chain heads (issue 11): their own rules file and promtool tests
CHAIN_RULES_FILE = PROMETHEUS_DIR / "rules" / "chains.rules.yml"
CHAIN_RULES_TEST_FILE = PROMETHEUS_DIR / "tests" / "chains_test.yml"
RULES_FILES = (RULES_FILE, CHAIN_RULES_FILE, FEEDS_RULES_FILE)  # what prometheus.yml's rules/*.rules.yml glob loads
ALERTMANAGER_DIR = REPO / "alertmanager"
GRAFANA_DIR = REPO / "grafana"


def alertmanager_binary() -> str:
    """Debian ships the Alertmanager server as `prometheus-alertmanager`."""
    return shutil.which("prometheus-alertmanager") or require_binary("alertmanager")


def load_chain_rules() -> list[dict]:
    """Every rule of chains.rules.yml, as load_rules() gives the main file's."""
    return load_rules(CHAIN_RULES_FILE)


def load_rules(path: Path = RULES_FILE) -> list[dict]:
    """Every rule of a rules file (the main one by default), in file order, with its group name added."""
    doc = yaml.safe_load(path.read_text())
    return [{**rule, "group": group["name"]} for group in doc["groups"] for rule in group["rules"]]


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_binary("amtool")
