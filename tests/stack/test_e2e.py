"""End to end: the exporter demo (with its simulator), a real Prometheus with the
committed rules, a real Alertmanager with the committed routes, and a webhook
receiver in this test.

It injects a 503 outage for one provider in the simulator, sees ProviderDown for
that provider arrive at the receiver, clears the outage and sees it resolve. In the
same run, every dashboard panel query and every recording rule runs on that
Prometheus, and the overview's panels return data.

Time is bounded: intervals are 1 s, and the `for:` of every alert is scaled down
60x (minutes become seconds) in a test-only copy of the rules generated from the
committed file. Every process is killed in teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from tests.binaries import require_binary

from .conftest import PROMETHEUS_DIR, RULES_FILE, alertmanager_binary
from .helpers import alertmanager_args, alertmanager_config_for_test, free_port, http_json, running, wait_until
from .promql import dashboard_files, dashboard_queries, panels, recording_rule_queries

pytestmark = [pytest.mark.binary, pytest.mark.timeout(150)]

OUTAGE_PROVIDER = "binance"
OUTAGE_CATEGORY = "exchanges"
EXPORTER_JOB = "crypto-api-exporter"


# ------------------------------------------------------------------ webhook receiver


class WebhookReceiver:
    """An aiohttp server on its own thread and loop: Alertmanager posts to
    /<receiver name>; every payload is kept as (path, json)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self.received.append((request.path, payload))
        return web.json_response({"status": "ok"})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{receiver}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def start(self) -> None:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def alerts(self, receiver: str, status: str, **labels: str) -> list[dict]:
        """Alerts with `status` and these labels that reached `receiver`."""
        with self._lock:
            payloads = [p for path, p in self.received if path == f"/{receiver}"]
        return [
            alert for p in payloads for alert in p["alerts"]
            if alert["status"] == status and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]  # fmt: skip


# ------------------------------------------------------------------ configs


def scaled_rules(tmp: Path) -> Path:
    """The committed rules with every `for:` scaled down 60x (5m -> 5s)."""
    doc = yaml.safe_load(RULES_FILE.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    minutes, secs = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", rule[key]).groups()
                    rule[key] = f"{max(1, round((int(minutes or 0) * 60 + int(secs or 0)) / 60))}s"
    path = tmp / "crypto_api.rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def prometheus_config(tmp: Path, rules: Path, hosts: dict[str, str]) -> Path:
    """The committed prometheus.yml with 1 s intervals, the test's rules, and the
    compose hostnames mapped to loopback ports."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]

    def remap(static_configs: list[dict]) -> None:
        for sc in static_configs:
            sc["targets"] = [hosts[t] for t in sc["targets"]]

    for job in config["scrape_configs"]:
        remap(job["static_configs"])
    for am in config["alerting"]["alertmanagers"]:
        remap(am["static_configs"])
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ------------------------------------------------------------------ the stack


class Stack:
    def __init__(self, exporter: str, simulator: str, prometheus: str, alertmanager: str, receiver: WebhookReceiver):
        self.exporter, self.simulator, self.prometheus, self.alertmanager = exporter, simulator, prometheus, alertmanager
        self.receiver = receiver

    def query(self, expr: str) -> list[dict]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer = http_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    prometheus_bin = require_binary("prometheus")
    am_bin = alertmanager_binary()
    ports = {name: free_port() for name in ("exporter", "simulator", "prometheus", "alertmanager")}
    exporter = f"http://127.0.0.1:{ports['exporter']}"
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    alertmanager = f"http://127.0.0.1:{ports['alertmanager']}"
    simulator = f"http://127.0.0.1:{ports['simulator']}"

    receiver = WebhookReceiver()
    receiver.start()
    with contextlib.ExitStack() as processes:
        processes.callback(receiver.stop)
        processes.enter_context(running(
            [sys.executable, "-m", "exporter", "demo", f"--web.listen-address=127.0.0.1:{ports['exporter']}",
             f"--simulator.listen-address=127.0.0.1:{ports['simulator']}", "--no-chaos", "--interval", "1s"],
            tmp_path / "exporter.log", f"{exporter}/healthz", timeout=30,
        ))  # fmt: skip
        am_config = alertmanager_config_for_test(tmp_path, webhook_base=f"http://127.0.0.1:{receiver.port}")
        processes.enter_context(running(
            alertmanager_args(am_bin, am_config, tmp_path, ports["alertmanager"]),
            tmp_path / "alertmanager.log", f"{alertmanager}/-/ready",
        ))  # fmt: skip
        prom_config = prometheus_config(
            tmp_path,
            scaled_rules(tmp_path),
            {
                "exporter:7860": f"127.0.0.1:{ports['exporter']}",
                "localhost:9090": f"127.0.0.1:{ports['prometheus']}",
                "alertmanager:9093": f"127.0.0.1:{ports['alertmanager']}",
            },
        )
        processes.enter_context(running(
            [prometheus_bin, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp_path / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--rules.alert.resend-delay=1s",
             "--log.level=info"],
            tmp_path / "prometheus.log", f"{prometheus}/-/ready",
        ))  # fmt: skip
        yield Stack(exporter, simulator, prometheus, alertmanager, receiver)
        with contextlib.suppress(Exception):  # leave the simulator clean even on failure
            http_json(f"{simulator}/control/faults", method="DELETE")


def test_outage_alert_and_dashboard_queries(stack: Stack) -> None:
    started = time.monotonic()
    down = {"alertname": "ProviderDown", "provider": OUTAGE_PROVIDER}

    # The pipeline works: Prometheus scrapes the exporter and sees the provider up.
    wait_until(
        lambda: stack.query(f'max(crypto_api_up{{job="{EXPORTER_JOB}", provider="{OUTAGE_PROVIDER}"}}) == 1'),
        timeout=30, what=f"{OUTAGE_PROVIDER} up in Prometheus",
    )  # fmt: skip
    assert not stack.receiver.alerts("pagerduty-critical", "firing", **down)

    # Outage: every endpoint of the provider answers 503.
    http_json(f"{stack.simulator}/control/faults", {"provider": OUTAGE_PROVIDER, "status": 503}, method="POST")
    (alert,) = wait_until(
        lambda: stack.receiver.alerts("pagerduty-critical", "firing", **down)[:1],
        timeout=45, interval=0.5, what="ProviderDown at the receiver",
    )  # fmt: skip
    assert alert["labels"] == {
        "alertname": "ProviderDown",
        "severity": "critical",
        "provider": OUTAGE_PROVIDER,
        "category": OUTAGE_CATEGORY,
        "monitor": "crypto-api",  # external label of prometheus.yml
    }
    assert alert["annotations"]["runbook_url"].endswith("docs/runbooks.md#providerdown")
    assert alert["annotations"]["description"].startswith(f"Every endpoint of {OUTAGE_PROVIDER} ({OUTAGE_CATEGORY})")

    # Every dashboard query and recording rule runs, with data accumulated meanwhile.
    check_queries(stack)

    # Recovery: the alert resolves (the demo's breaker half-opens within 20 s).
    http_json(f"{stack.simulator}/control/faults", method="DELETE")
    wait_until(
        lambda: stack.receiver.alerts("pagerduty-critical", "resolved", **down),
        timeout=60, interval=0.5, what="ProviderDown resolved at the receiver",
    )  # fmt: skip
    assert time.monotonic() - started < 120


def check_queries(stack: Stack) -> None:
    # Every rule of the committed file (with scaled `for:`) is loaded and evaluates cleanly.
    groups = http_json(f"{stack.prometheus}/api/v1/rules")["data"]["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    expected = yaml.safe_load(RULES_FILE.read_text())
    assert len(loaded) == sum(len(g["rules"]) for g in expected["groups"])
    unhealthy = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not unhealthy, unhealthy

    for q in recording_rule_queries():
        stack.query(q.expr)  # raises on a PromQL error

    # Template variables: what Grafana's label_values() would offer.
    for path in dashboard_files():
        for variable in yaml.safe_load(path.read_text()).get("templating", {}).get("list", []):
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"]).groups()
            metric = metric.replace("$provider", OUTAGE_PROVIDER)
            url = f"{stack.prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
            values = http_json(url)["data"]
            assert values, f"variable {variable['name']} of {path.stem} offers nothing"
            if label == "provider":
                assert OUTAGE_PROVIDER in values

    empty_overview = []
    for q in dashboard_queries({"provider": OUTAGE_PROVIDER, "endpoint": ".*"}):
        result = stack.query(q.expr)
        if q.dashboard == "crypto-api-overview" and not result:
            empty_overview.append(q.panel)
    assert not empty_overview, f"overview panels without data: {empty_overview}"


def test_overview_panels_are_all_checked() -> None:
    """Guards the e2e check above: the overview has queries, all with targets."""
    overview = next(p for p in dashboard_files() if p.stem == "overview")
    titles = [p["title"] for p in panels(yaml.safe_load(overview.read_text())) if p["type"] != "row"]
    assert len(titles) >= 10
    assert {q.panel for q in dashboard_queries() if q.dashboard == "crypto-api-overview"} == set(titles)
