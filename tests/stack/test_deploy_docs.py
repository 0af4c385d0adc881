"""docs/deploy.md's configuration snippets are real: the Prometheus HA replica's
settings over the committed prometheus.yml pass `promtool check config`, and drop the
`replica` label from alerts (so Alertmanager sees both replicas' alerts as one); the
alerting snippets are the committed prometheus.yml's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from .conftest import PROMETHEUS_DIR, REPO

DOC = (REPO / "docs" / "deploy.md").read_text()


def snippets(first_line: str) -> list[dict]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if b.startswith(first_line)]


def snippet(first_line: str) -> dict:
    (block,) = snippets(first_line)
    return block


def deep_merge(base: dict, over: dict) -> dict:
    return {k: deep_merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v for k, v in {**base, **over}.items()}


def test_the_ha_replica_config_is_valid_and_drops_the_replica_label_from_alerts(promtool: str, tmp_path: Path) -> None:
    committed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    replica = snippet("# prometheus.yml of replica a")
    config = deep_merge(committed, replica)
    assert config["global"]["external_labels"] == {**committed["global"]["external_labels"], "replica": "a"}
    assert config["alerting"]["alertmanagers"] == committed["alerting"]["alertmanagers"]
    (drop,) = config["alerting"]["alert_relabel_configs"]
    assert drop == {"action": "labeldrop", "regex": "replica"}
    config["rule_files"] = [str(PROMETHEUS_DIR / r) for r in committed["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerting_snippets_are_the_committed_config() -> None:
    committed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["alerting"]
    shown = snippets("alerting:")
    assert len(shown) == 2
    for doc in shown:
        (key,) = doc["alerting"]
        assert doc["alerting"][key] == committed[key], key
    assert {k for doc in shown for k in doc["alerting"]} == set(committed)


def test_the_remote_write_snippet_parses() -> None:
    assert snippet("remote_write:")["remote_write"][0]["url"].endswith("/api/v1/push")
