"""Alertmanager routing, inhibition and templates, checked with the real amtool and
a real Alertmanager on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from .conftest import ALERTMANAGER_DIR, REPO, alertmanager_binary, load_rules
from .helpers import (
    alertmanager_args,
    alertmanager_config_for_test,
    free_port,
    http_json,
    running,
    wait_until,
)
from .test_prometheus import NOT_PROVIDER_ALERTS

pytestmark = pytest.mark.binary

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_amtool_check_config(amtool: str) -> None:
    result = run(amtool, "check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout and "3 inhibit rules" in result.stdout


def test_no_secret_in_config() -> None:
    text = CONFIG.read_text()
    for secret_setting in ("routing_key:", "service_key:", "api_url:", "slack_api_url:"):
        assert secret_setting not in text, f"{secret_setting} must come from a *_file setting"
    config = yaml.safe_load(text)
    assert config["global"]["slack_api_url_file"].startswith("/run/secrets/")
    pagerduty = next(r for r in config["receivers"] if r["name"] == "pagerduty-critical")
    assert pagerduty["pagerduty_configs"][0]["routing_key_file"].startswith("/run/secrets/")


def test_uses_matchers_not_deprecated_match() -> None:
    config = yaml.safe_load(CONFIG.read_text())

    def routes(route: dict) -> Iterator[dict]:
        yield route
        for child in route.get("routes", []):
            yield from routes(child)

    deprecated = {"match", "match_re", "source_match", "source_match_re", "target_match", "target_match_re"}
    for item in [*routes(config["route"]), *config["inhibit_rules"]]:
        assert not deprecated & set(item), item


# (labels, expected receiver): every route of the tree, and the default.
ROUTES = [
    ({"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"}, "pagerduty-critical"),
    ({"alertname": "ProviderRateLimited", "severity": "critical", "provider": "etherscan", "category": "explorers"}, "pagerduty-critical"),
    ({"alertname": "ApiKeysRejected", "severity": "critical", "provider": "infura", "category": "rpc_nodes"}, "pagerduty-critical"),
    ({"alertname": "DataStale", "severity": "warning", "provider": "okx", "category": "exchanges", "endpoint": "ticker"}, "slack-warnings"),
    ({"alertname": "ProbeBudgetExhausted", "severity": "warning", "provider": "coinmarketcap", "category": "market_data", "scope": "budget"}, "slack-warnings"),
    ({"alertname": "ApiKeyInvalid", "severity": "warning", "provider": "alchemy", "category": "rpc_nodes", "key": "ALCHEMY_API_KEY"}, "slack-warnings"),
    ({"alertname": "CategoryOutage", "severity": "critical", "category": "news"}, "pagerduty-critical"),
    ({"alertname": "ExporterDown", "severity": "critical", "job": "crypto-api-exporter"}, "pagerduty-critical"),
    ({"alertname": "RateLimitNearExhaustion", "severity": "critical", "provider": "coingecko", "scope": "minute"}, "pagerduty-critical"),
    ({"alertname": "HighErrorRate", "severity": "warning", "provider": "okx", "category": "exchanges"}, "slack-warnings"),
    ({"alertname": "RateLimitNearExhaustion", "severity": "warning", "provider": "etherscan", "scope": "budget"}, "slack-warnings"),
    ({"alertname": "PriceDivergence", "severity": "warning", "name": "btc_usd"}, "slack-warnings"),
    ({"alertname": "LatencyAnomaly", "severity": "info", "provider": "binance", "endpoint": "ping"}, "default"),
    # Maintenance is information: shown in Alertmanager and Grafana, sent nowhere.
    ({"alertname": "ProviderMaintenance", "severity": "info", "provider": "okx", "category": "exchanges"}, "default"),
    (
        {"alertname": "ValueFrozen", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "btc_ticker", "name": "btc_usd"},
        "slack-warnings",
    ),
    ({"alertname": "SomethingElse", "severity": "page"}, "default"),
    ({"alertname": "NoSeverity"}, "default"),
]


def route_test(amtool: str, labels: dict[str, str], receiver: str) -> subprocess.CompletedProcess[str]:
    return run(
        amtool, "config", "routes", "test",
        f"--config.file={CONFIG}", f"--verify.receivers={receiver}",
        *(f"{k}={v}" for k, v in labels.items()),
    )  # fmt: skip


def with_incidents(labels: dict[str, str], receiver: str) -> str:
    """Warnings and pages also go to the incident service, first, on a `continue: true`
    route (docs/incidents.md): the real receiver is still matched after it."""
    return f"incidents,{receiver}" if labels.get("severity") in ("critical", "warning") else receiver


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=lambda x: x if isinstance(x, str) else x["alertname"])
def test_route(amtool: str, labels: dict[str, str], receiver: str) -> None:
    expected = with_incidents(labels, receiver)
    result = route_test(amtool, labels, expected)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


def test_the_incident_route_continues_to_the_real_receivers() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    first, *others = config["route"]["routes"]
    assert first["receiver"] == "incidents" and first["continue"] is True and first["matchers"] == ['severity =~ "critical|warning"']
    assert all(not r.get("continue") for r in others)  # the real receivers stop the walk, as before
    (hook,) = next(r for r in config["receivers"] if r["name"] == "incidents")["webhook_configs"]
    assert hook["url"].endswith("/api/incidents/webhook") and hook["send_resolved"] is True and 0 < hook["max_alerts"] <= 2000


def test_every_route_groups_by_category_and_provider() -> None:
    """One provider's alerts of one severity make one message (every provider alert
    carries both labels: test_prometheus.py)."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["group_by"] == ["category", "provider"]
    assert all("group_by" not in child for child in config["route"]["routes"])


# Per route: (group_wait, group_interval) at most. Pages wait little and are updated
# (resolves, late joiners) within 15 s; warnings never wait 5 minutes for a resolve.
TIMINGS = {"pagerduty-critical": ("15s", "15s"), "slack-warnings": ("30s", "1m")}


def _seconds(duration: str) -> int:
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", duration))


@pytest.mark.parametrize(("receiver", "limits"), TIMINGS.items())
def test_route_timings(receiver: str, limits: tuple[str, str]) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    route = next(r for r in config["route"]["routes"] if r["receiver"] == receiver)
    wait = route.get("group_wait", config["route"]["group_wait"])
    interval = route.get("group_interval", config["route"]["group_interval"])
    assert _seconds(wait) <= _seconds(limits[0]) and _seconds(interval) <= _seconds(limits[1]), (wait, interval)


def test_route_verification_catches_a_wrong_receiver(amtool: str) -> None:
    result = route_test(amtool, {"alertname": "ProviderDown", "severity": "critical"}, "slack-warnings")
    assert result.returncode != 0


SEVERITY_RECEIVER = {"critical": "pagerduty-critical", "warning": "slack-warnings", "info": "default"}


@pytest.mark.parametrize("rule", [r for r in load_rules() if "alert" in r], ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_of_the_rules_reaches_its_receiver(amtool: str, rule: dict) -> None:
    severity = rule["labels"]["severity"]
    labels = {"alertname": rule["alert"], "severity": severity, "provider": "p", "category": "c"}
    result = route_test(amtool, labels, with_incidents(labels, SEVERITY_RECEIVER[severity]))
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- live Alertmanager


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "success"}')

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    """Stands in for Slack and PagerDuty: records every POST as (path, json)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: ThreadingHTTPServer) -> Iterator[str]:
    """A real Alertmanager with the committed routes, inhibitions and templates,
    delivering Slack and PagerDuty notifications to the local receiver."""
    binary = alertmanager_binary()
    port = free_port()
    config = alertmanager_config_for_test(tmp_path, notify_base=f"http://127.0.0.1:{receiver.server_address[1]}")
    url = f"http://127.0.0.1:{port}"
    with running(alertmanager_args(binary, config, tmp_path, port), tmp_path / "am.log", f"{url}/-/ready"):
        yield url


SUMMARIES = {(r["alert"], r["labels"]["severity"]): r["annotations"]["summary"] for r in load_rules() if "alert" in r}


def post_alerts(url: str, alerts: list[dict[str, str]], *, resolved: bool = False) -> None:
    """Post alerts as Prometheus would: firing for the next hour, or resolved now;
    the summary of the rules file (or a test one for alerts of other systems)."""
    now = datetime.now(UTC)
    http_json(
        f"{url}/api/v2/alerts",
        [
            {
                "labels": labels,
                "annotations": {
                    "summary": SUMMARIES.get((labels["alertname"], labels.get("severity", "")), "test"),
                    "description": f"{labels['alertname']} test description",
                    "runbook_url": f"https://example.invalid/runbooks.md#{labels['alertname'].lower()}",
                },
                "startsAt": (now - timedelta(minutes=5)).isoformat(),
                "endsAt": (now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)).isoformat(),
            }
            for labels in alerts
        ],
        method="POST",
    )


def alert_states(url: str) -> dict[tuple, list]:
    """(alertname, provider, category, severity) -> inhibitedBy fingerprints."""
    return {
        tuple(a["labels"].get(k, "") for k in ("alertname", "provider", "category", "severity")): a["status"]["inhibitedBy"]
        for a in http_json(f"{url}/api/v2/alerts")
    }


def key(labels: dict[str, str]) -> tuple:
    return tuple(labels.get(k, "") for k in ("alertname", "provider", "category", "severity"))


EXPORTER_DOWN = {"alertname": "ExporterDown", "severity": "critical", "job": "crypto-api-exporter", "instance": "exporter:7860"}

# (description, alerts posted together, alerts expected inhibited, alerts expected not inhibited)
INHIBITIONS = [
    (
        "provider-level: only the critical tier silences its warning tier",
        [
            {"alertname": "CategoryOutage", "severity": "critical", "category": "news"},
            {"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"},
            {"alertname": "RateLimitNearExhaustion", "severity": "critical", "provider": "coingecko", "category": "market_data", "scope": "minute"},
        ],
        [
            # Critical silences warning for the same alert and provider.
            {"alertname": "RateLimitNearExhaustion", "severity": "warning", "provider": "coingecko", "category": "market_data", "scope": "minute"},
        ],
        [
            # A category outage silences its providers' ProviderDown in the rules, not
            # here; and a provider down never hides an alert about it: whatever fires
            # beside it was let through by the rules on purpose.
            {"alertname": "ProviderDown", "severity": "critical", "provider": "newsapi", "category": "news"},
            {"alertname": "EndpointDown", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "ticker"},
            {"alertname": "HighErrorRate", "severity": "warning", "provider": "binance", "category": "exchanges"},
            {"alertname": "DataStale", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "ticker"},
            {"alertname": "RateLimitNearExhaustion", "severity": "warning", "provider": "etherscan", "category": "explorers", "scope": "budget"},
            {"alertname": "ApiKeyInvalid", "severity": "warning", "provider": "coingecko", "category": "market_data", "key": "COINGECKO_KEY"},
        ],
    ),
    (
        "maintenance silences that provider's alerts, not another provider's",
        [{"alertname": "ProviderMaintenance", "severity": "info", "provider": "binance", "category": "exchanges"}],
        [
            {"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"},
            {"alertname": "EndpointDown", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "ticker"},
            {"alertname": "ValueFrozen", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "btc_ticker", "name": "btc_usd"},
            {"alertname": "ApiKeyInvalid", "severity": "warning", "provider": "binance", "category": "exchanges", "key": "BINANCE_KEY"},
        ],
        [
            {"alertname": "ProviderDown", "severity": "critical", "provider": "okx", "category": "exchanges"},
            {"alertname": "CategoryOutage", "severity": "critical", "category": "exchanges"},
            {"alertname": "LatencyAnomaly", "severity": "info", "provider": "binance", "category": "exchanges", "endpoint": "ping"},
        ],
    ),
    (
        "exporter down",
        [EXPORTER_DOWN],
        [
            {"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"},
            {"alertname": "ApiKeysRejected", "severity": "critical", "provider": "infura", "category": "rpc_nodes"},
            {"alertname": "CategoryOutage", "severity": "critical", "category": "news"},
            {"alertname": "DataStale", "severity": "warning", "provider": "binance", "category": "exchanges", "endpoint": "ticker"},
            {"alertname": "PriceDivergence", "severity": "warning", "name": "btc_usd"},
        ],
        [
            {"alertname": "ConfigReloadFailed", "severity": "warning", "job": "crypto-api-exporter"},
            # Alerts of other systems sharing the Alertmanager are not ours to silence.
            {"alertname": "HostDown", "severity": "critical", "instance": "node-1"},
        ],
    ),
]


def test_inhibitions_are_only_those_that_cannot_outlive_their_source() -> None:
    """ExporterDown silences every alert that needs the exporter's series (they
    vanish with them), and a critical tier its warning tier (same `for` and
    `keep_firing_for`, so the warning's lifetime contains the critical's). Nothing
    else: see docs/alerts.md and the test below for what Alertmanager does otherwise."""
    rules = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    assert len(rules) == 3
    exporter, tiers, maintenance = rules
    assert exporter["source_matchers"] == ['alertname = "ExporterDown"'] and "equal" not in exporter
    (target,) = exporter["target_matchers"]
    names = set(re.fullmatch(r'alertname =~ "(.+)"', target).group(1).split("|"))
    assert names == {r["alert"] for r in load_rules() if "alert" in r} - (NOT_PROVIDER_ALERTS - {"CategoryOutage", "PriceDivergence"})
    assert tiers == {"source_matchers": ['severity = "critical"'], "target_matchers": ['severity = "warning"'], "equal": ["alertname", "provider"]}
    # Maintenance: its targets are guarded in the rules for as long as ProviderMaintenance
    # fires (keep_firing_for = the guard's hold), so none starts before it nor outlives it.
    assert maintenance == {
        "source_matchers": ['alertname = "ProviderMaintenance"'],
        "target_matchers": ['severity =~ "warning|critical"'],
        "equal": ["provider"],
    }
    rule = next(r for r in load_rules() if r.get("alert") == "ProviderMaintenance")
    assert rule["keep_firing_for"] == "10m" and "max_over_time10m" in next(r for r in load_rules() if r.get("alert") == "ProviderDown")["expr"]


@pytest.mark.parametrize(("sources", "inhibited", "active"), [c[1:] for c in INHIBITIONS], ids=[c[0] for c in INHIBITIONS])
def test_inhibitions(alertmanager: str, sources: list, inhibited: list, active: list) -> None:
    post_alerts(alertmanager, sources + inhibited + active)

    def all_inhibited() -> bool:
        states = alert_states(alertmanager)
        return all(states.get(key(a)) for a in inhibited)

    # Once every expected inhibition shows, the inhibitor has seen the sources, so
    # an alert still active now is really not inhibited.
    wait_until(all_inhibited, timeout=15, what="the expected inhibitions")
    states = alert_states(alertmanager)
    for source in sources:
        assert states[key(source)] == [], f"source {source} must not be inhibited"
    for alert in active:
        assert states[key(alert)] == [], f"{alert} must not be inhibited"


def test_notifications_render_the_templates(alertmanager: str, receiver: ThreadingHTTPServer) -> None:
    post_alerts(
        alertmanager,
        [
            {"alertname": "ProviderDown", "severity": "critical", "provider": "binance", "category": "exchanges"},
            {"alertname": "HighErrorRate", "severity": "warning", "provider": "okx", "category": "exchanges"},
        ],
    )
    got = wait_until(
        lambda: len({p for p, _ in receiver.received}) >= 2 and list(receiver.received),
        timeout=20,
        what="a Slack and a PagerDuty notification",
    )
    pagerduty = next(body for path, body in got if path == "/pagerduty")
    slack = next(body for path, body in got if path == "/slack")

    # PagerDuty Events API v2: the key came from routing_key_file.
    assert pagerduty["routing_key"] == "test-routing-key"
    assert pagerduty["event_action"] == "trigger"
    assert pagerduty["payload"]["summary"] == "[FIRING:1] binance (exchanges): ProviderDown: A crypto API provider is down; the outage is theirs."
    assert pagerduty["payload"]["severity"] == "critical"
    details = pagerduty["payload"]["custom_details"]
    assert details["firing"].strip() == "ProviderDown binance: ProviderDown test description"
    assert details["runbook_url"].endswith("#providerdown")

    attachment = slack["attachments"][0]
    assert slack["channel"] == "#crypto-api-alerts"
    assert attachment["title"] == "[FIRING:1] okx (exchanges): HighErrorRate: A crypto API provider fails many of its probes now and then; theirs."
    assert attachment["color"] == "warning"
    assert "*Firing*" in attachment["text"]
    assert "*WARNING* `HighErrorRate` okx [exchanges]" in attachment["text"]
    assert "HighErrorRate test description <https://example.invalid/runbooks.md#higherrorrate|Runbook>" in attachment["text"]


def test_alertmanager_loses_the_resolve_of_an_alert_inhibited_after_it_was_sent(tmp_path: Path, receiver: ThreadingHTTPServer) -> None:
    """Why the rules guard instead of Alertmanager inhibiting (docs/alerts.md): with
    Alertmanager 0.25, an alert sent as firing, then inhibited, that resolves while
    inhibited never has its resolve sent; the receiver shows it firing for good.
    (It also sends an inhibited alert that outlives its inhibitor as new, after the
    recovery.) If this test fails, Alertmanager changed: revisit the design."""
    config = tmp_path / "am.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "hook", "group_by": ["provider"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
                "inhibit_rules": [{"source_matchers": ['alertname = "Source"'], "target_matchers": ['alertname = "Target"'], "equal": ["provider"]}],
                "receivers": [{"name": "hook", "webhook_configs": [{"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook", "send_resolved": True}]}],
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target, source = {"alertname": "Target", "provider": "p"}, {"alertname": "Source", "provider": "p"}

    def sent(alertname: str, status: str) -> bool:
        return any(a["labels"]["alertname"] == alertname and a["status"] == status for _, body in list(receiver.received) for a in body["alerts"])

    with running(alertmanager_args(alertmanager_binary(), config, tmp_path, port), tmp_path / "am.log", f"{url}/-/ready"):
        post_alerts(url, [target])
        wait_until(lambda: sent("Target", "firing"), timeout=15, what="Target sent firing")
        post_alerts(url, [source])
        wait_until(lambda: sent("Source", "firing"), timeout=15, what="Source sent firing")
        post_alerts(url, [target], resolved=True)
        time.sleep(5)  # five group intervals
        assert not sent("Target", "resolved")
