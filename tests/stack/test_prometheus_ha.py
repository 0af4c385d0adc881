"""Issue 14, HA: a Prometheus HA pair in front of the Alertmanager cluster, all native
binaries on loopback.

Two Prometheus run the committed prometheus.yml, identical but for the `replica`
external label (docs/deploy.md, "High availability"), both scraping one exporter (the
demo, on its simulator, binance only) and both sending to both Alertmanagers of
docker-compose.yml's cluster (tests/stack/compose.py runs their compose commands). An
outage of binance makes both replicas fire ProviderDown and send it to both nodes:
four copies of the alert, and the webhook receives the page exactly once, without the
`replica` label, because prometheus.yml drops it from alerts (Prometheus'
configuration docs, <alert_relabel_configs>: "One use for this is ensuring a HA pair
of Prometheus servers with different external labels send identical alerts").

Short timings so it takes seconds: 1 s probes, scrapes and evaluations, ProviderDown's
`for` cut to 2 s in a test copy of the rules, a 1 s group wait and a 2 s peer timeout.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import require_binary

from .compose import DUPLICATE_WINDOW, Node, alertmanager_cluster
from .conftest import RULES_FILE
from .helpers import WebhookReceiver, free_port, http_json, prometheus_config, running, running_demo, wait_until

pytestmark = [pytest.mark.binary, pytest.mark.timeout(180)]

PROVIDER = "binance"
REPLICAS = ("a", "b")
INTERVAL = "1s"
FOR = "2s"  # ProviderDown's committed `for: 1m`, shortened in the test copy only


@dataclass(frozen=True)
class Pair:
    prometheus: dict[str, str]  # replica: base URL
    alertmanagers: list[Node]
    simulator: str
    receiver: WebhookReceiver


def rules_for_test(tmp: Path) -> Path:
    """The committed rules file with ProviderDown's `for` shortened; nothing else changed."""
    doc = yaml.safe_load(RULES_FILE.read_text())
    (rule,) = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "ProviderDown"]
    rule["for"] = FOR
    path = tmp / RULES_FILE.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def replica_config(tmp: Path, replica: str, hosts: dict[str, str]) -> Path:
    """The committed prometheus.yml with addresses, intervals and the rules path rewritten
    (helpers.prometheus_config), plus this replica's `replica` external label: the only
    difference between the two."""
    (tmp / replica).mkdir()
    path = prometheus_config(tmp / replica, [rules_for_test(tmp / replica)], hosts, interval=INTERVAL)
    config = yaml.safe_load(path.read_text())
    config["global"]["external_labels"]["replica"] = replica
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    prometheus_bin = require_binary("prometheus")
    exporter_port, simulator_port = free_port(), free_port()
    simulator = f"http://127.0.0.1:{simulator_port}"
    receiver = WebhookReceiver()
    receiver.start()
    with contextlib.ExitStack() as processes:
        processes.callback(receiver.stop)
        processes.enter_context(running_demo(tmp_path, exporter_port, simulator_port, "--no-chaos", f"--interval={INTERVAL}", f"--providers={PROVIDER}"))
        nodes = processes.enter_context(alertmanager_cluster(tmp_path, receiver))
        prometheus = {}
        for replica in REPLICAS:
            port = free_port()
            hosts = {"exporter:7860": f"127.0.0.1:{exporter_port}", "localhost:9090": f"127.0.0.1:{port}"}
            hosts |= {f"{n.service}:9093": n.url.removeprefix("http://") for n in nodes}
            config = replica_config(tmp_path, replica, hosts)
            url = f"http://127.0.0.1:{port}"
            processes.enter_context(running(
                [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / replica / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                tmp_path / f"prometheus-{replica}.log", f"{url}/-/ready",
            ))  # fmt: skip
            prometheus[replica] = url
        yield Pair(prometheus, nodes, simulator, receiver)
        with contextlib.suppress(Exception):
            http_json(f"{simulator}/control/faults", method="DELETE")


def query(base: str, expr: str) -> list[dict]:
    answer = http_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def sent_to(base: str) -> dict[str, float]:
    """prometheus_notifications_sent_total by Alertmanager URL, from the replica's own /metrics."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.labels["alertmanager"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "prometheus_notifications_sent"
        for s in family.samples
        if s.name == "prometheus_notifications_sent_total"
    }


def test_an_ha_pair_pages_once_through_the_alertmanager_cluster(pair: Pair) -> None:
    # Both replicas discovered both Alertmanagers and scrape the exporter.
    for base in pair.prometheus.values():
        active = wait_until(lambda b=base: len(http_json(f"{b}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]) == 2 and
                            http_json(f"{b}/api/v1/alertmanagers")["data"]["activeAlertmanagers"], timeout=15, what="both Alertmanagers")  # fmt: skip
        assert sorted(a["url"] for a in active) == sorted(f"{n.url}/api/v2/alerts" for n in pair.alertmanagers)
        wait_until(lambda b=base: query(b, f'max(crypto_api_up{{provider="{PROVIDER}"}}) == 1'), timeout=30, what=f"{PROVIDER} up at {base}")
    labels = {r: http_json(f"{b}/api/v1/status/config")["data"]["yaml"] for r, b in pair.prometheus.items()}
    assert all(f"replica: {r}" in text for r, text in labels.items()), "each replica carries its own label"

    injected = time.monotonic()
    http_json(f"{pair.simulator}/control/faults", {"provider": PROVIDER, "status": 503}, method="POST")

    # Both replicas fire it, each on its own evaluation.
    for base in pair.prometheus.values():
        wait_until(
            lambda b=base: query(b, f'ALERTS{{alertname="ProviderDown", alertstate="firing", provider="{PROVIDER}"}}'),
            timeout=30,
            what=f"ProviderDown firing at {base}",
        )

    def pages() -> list[dict]:
        return pair.receiver.alerts("pagerduty-critical", "firing", alertname="ProviderDown", provider=PROVIDER)

    wait_until(pages, timeout=30, what="the page")
    paged = time.monotonic() - injected

    # Every replica delivered to every node (four copies of the alert reached the
    # cluster); past the second node's turn, still one page.
    for replica, base in pair.prometheus.items():
        wait_until(
            lambda b=base: len([v for v in sent_to(b).values() if v > 0]) == len(pair.alertmanagers), timeout=10, what=f"replica {replica} sent to both nodes"
        )
    time.sleep(DUPLICATE_WINDOW)
    found = pages()
    assert len(found) == 1, f"one page expected, got {[a['labels'] for a in found]}"  # without the labeldrop: one per replica
    (page,) = found
    assert "replica" not in page["labels"], "identical alerts: the replica label is dropped before sending"
    assert page["labels"]["monitor"] == "crypto-api"
    notifications = [p for _, path, p in pair.receiver.payloads() if path == "/pagerduty-critical"]
    assert len(notifications) == 1, notifications
    print(f"\nHA pair: paged {paged:.1f} s after the fault, once, from {len(pair.prometheus)} replicas x {len(pair.alertmanagers)} Alertmanagers")
