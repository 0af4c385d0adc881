"""Issue 16, point 3: a real Alertmanager with the committed routes sends each alert to
the incident service (`crypto-api-exporter incidents`, a real process on its SQLite
file) and to the page receiver at once; with the incident service killed, the page
still arrives; restarted on the same file, it has lost nothing.

Receivers other than `incidents` are webhooks to a local sink (as the other stack tests
do); timings shortened to 1 s."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, alertmanager_binary
from .helpers import WebhookReceiver, alertmanager_args, alertmanager_config_for_test, free_port, http_json, running, wait_until
from .test_alertmanager import post_alerts

pytestmark = [pytest.mark.binary, pytest.mark.timeout(180)]


def incidents_args(port: int, db: Path) -> list[str]:
    return [sys.executable, "-m", "exporter", "incidents", f"--web.listen-address=127.0.0.1:{port}", f"--incidents.db={db}", "--incidents.settle=0"]


def incident_list(base: str, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return http_json(f"{base}/api/incidents?{qs}")["incidents"]


def test_alertmanager_pages_and_opens_incidents_and_pages_without_them(tmp_path: Path) -> None:
    sink = WebhookReceiver()
    sink.start()
    try:
        port, am_port = free_port(), free_port()
        base, am = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{am_port}"
        config = alertmanager_config_for_test(tmp_path, webhook_base=sink.url, group_wait="1s")
        doc = yaml.safe_load(config.read_text())
        (hook,) = next(r for r in doc["receivers"] if r["name"] == "incidents")["webhook_configs"]
        hook["url"] = f"{base}/api/incidents/webhook"  # the real service, not the sink
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        db = tmp_path / "incidents.db"
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        with running(alertmanager_args(alertmanager_binary(), config, tmp_path, am_port), tmp_path / "am.log", f"{am}/-/ready"):
            with running(incidents_args(port, db), tmp_path / "incidents.log", f"{base}/healthz", env=env) as service:
                binance = {"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"}
                post_alerts(am, [binance])
                wait_until(lambda: sink.alerts("pagerduty-critical", "firing", provider="binance"), timeout=30, what="the page")
                (opened,) = wait_until(lambda: incident_list(base, provider="binance"), timeout=30, what="the incident")
                assert opened["status"] == "open" and opened["severity"] == "critical" and opened["alertnames"] == ["ProviderDown"]
                detail = http_json(f"{base}/api/incidents/{opened['id']}")
                # What the real binary sent: the v4 payload the parser expects.
                assert detail["receiver"] == "incidents" and 'provider="binance"' in detail["group_key"] and detail["external_url"]
                (alert,) = detail["alerts"]
                assert len(alert["fingerprint"]) == 16 and alert["annotations"]["runbook_url"].endswith("#providerdown")
                assert detail["timeline"][0]["kind"] == "opened"
                wait_until(lambda: http_json(f"{base}/api/incidents/{opened['id']}")["explanation"], timeout=30, what="the explanation")

                post_alerts(am, [binance], resolved=True)
                wait_until(lambda: sink.alerts("pagerduty-critical", "resolved", provider="binance"), timeout=30, what="the resolve page")
                wait_until(lambda: incident_list(base, status="resolved"), timeout=30, what="the incident resolved")
                assert len(incident_list(base)) == 1  # Alertmanager's repeats and retries opened nothing more
                os.killpg(service.pid, signal.SIGKILL)  # down, without a goodbye
                service.wait(timeout=10)

            # The incident service is down: the page arrives all the same.
            kraken = {"alertname": "ProviderDown", "severity": "critical", "provider": "kraken", "category": "exchanges"}
            post_alerts(am, [kraken])
            wait_until(lambda: sink.alerts("pagerduty-critical", "firing", provider="kraken"), timeout=30, what="the page with the incident service down")
            wait_until(
                lambda: any("incidents" in line and "refused" in line for line in (tmp_path / "am.log").read_text().splitlines()),
                timeout=30,
                what="Alertmanager's failed send to the incident service, on its own",
            )

            # Back on the same file: nothing lost; Alertmanager's retries bring the one it missed.
            with running(incidents_args(port, db), tmp_path / "incidents2.log", f"{base}/healthz", env=env):
                (old,) = incident_list(base, provider="binance")
                assert old["id"] == opened["id"] and old["status"] == "resolved" and old["summary"]
                # Alertmanager keeps no record of a send that failed: its next flush of the group sends again.
                (late,) = wait_until(lambda: incident_list(base, provider="kraken"), timeout=30, what="the missed notification, resent")
                assert late["id"] == opened["id"] + 1 and late["status"] == "open"
    finally:
        sink.stop()
