"""Issue 14, point 1: three shards on loopback against one simulator, a real Prometheus
scraping all three, and beside them one unsharded instance with its own Prometheus.

- every endpoint of the registry is probed by exactly one shard;
- the union of the shards' series equals the single instance's (label sets, less
  `instance`);
- every overview panel query returns the same series on both Prometheus (and the same
  values for the provider and endpoint counts), so nothing counts twice across shards;
- an outage of a provider one shard owns still pages through a real Alertmanager.

The registry is the shipped one (all 70 providers, a made-up key for every key var so
none is disabled), pointed at the simulator by a user file that `extends: shipped`.
It checks what is counted and what pages, not when (test_e2e.py measures the shipped
timings): Prometheus scrapes and evaluates every 2 s, every `for:` is a quarter of
the committed one and Alertmanager waits 1 s, so it takes about a minute, not three.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import load_config
from exporter.shard import owner
from tests.binaries import require_binary
from tests.integration.test_quiet import on_the_simulator

from .conftest import RULES_FILE, alertmanager_binary
from .helpers import (
    WebhookReceiver,
    alertmanager_args,
    alertmanager_config_for_test,
    free_port,
    http_json,
    prometheus_config,
    rules_with_shorter_for,
    running,
    wait_until,
)
from .promql import dashboard_queries

pytestmark = [pytest.mark.binary, pytest.mark.wallclock, pytest.mark.timeout(600)]

SHARDS = 3
INTERVAL = "5s"  # every endpoint; four exporters share two cores with two Prometheus
PROMETHEUS_INTERVAL = "2s"  # scrape and evaluation
FOR_DIVISOR = 4  # ProviderDown's `for: 1m` becomes 15 s
REGISTRY = load_config(None, {})
KEY_VARS = sorted({n for p in REGISTRY.providers for n in p.auth.env})
ENDPOINTS = {(p.name, ep.name) for p in REGISTRY.providers for ep in p.endpoints}
# Counts the overview shows: the same number whether one exporter or three report them.
COUNT_PANELS = ("Providers online", "Providers degraded", "Providers offline", "Providers unknown", "Endpoints up", "Endpoints down")


@dataclass
class Deployment:
    exporters: list[str]
    prometheus: str

    def query(self, expr: str) -> list[dict]:
        answer = http_json(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]


@dataclass
class Stacks:
    sharded: Deployment
    single: Deployment
    simulator: str
    receiver: WebhookReceiver


def user_file(tmp: Path, sim_url: str) -> Path:
    doc = on_the_simulator(sim_url)
    for p in doc["providers"]:
        p["interval"] = INTERVAL
    path = tmp / "mine.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[Stacks]:
    prometheus_bin, am_bin = require_binary("prometheus"), alertmanager_binary()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_KEY_1", "_API_KEY_2"))}
    env.update({name: f"made-up-{name.lower()}" for name in KEY_VARS})
    sim_port, am_port = free_port(), free_port()
    simulator, alertmanager = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{am_port}"
    config = user_file(tmp_path, simulator)
    receiver = WebhookReceiver()
    receiver.start()
    with contextlib.ExitStack() as processes:
        processes.callback(receiver.stop)
        processes.enter_context(running(
            [sys.executable, "-m", "exporter", "simulate", f"--web.listen-address=127.0.0.1:{sim_port}"],
            tmp_path / "simulator.log", f"{simulator}/control/health", timeout=30,
        ))  # fmt: skip
        am_config = alertmanager_config_for_test(tmp_path, webhook_base=receiver.url, group_wait="1s")
        processes.enter_context(running(alertmanager_args(am_bin, am_config, tmp_path, am_port), tmp_path / "alertmanager.log", f"{alertmanager}/-/ready"))

        def exporter(name: str, *flags: str) -> str:
            port = free_port()
            args = [sys.executable, "-m", "exporter", "run", "-c", str(config), f"--web.listen-address=127.0.0.1:{port}", *flags]
            processes.enter_context(running(args, tmp_path / f"{name}.log", f"http://127.0.0.1:{port}/healthz", timeout=60, env=env))
            return f"127.0.0.1:{port}"

        shards = [exporter(f"shard{i}", f"--shard={i}", f"--total-shards={SHARDS}") for i in range(SHARDS)]
        single = exporter("single")

        rules = rules_with_shorter_for(tmp_path, [RULES_FILE], FOR_DIVISOR)

        def prometheus(name: str, targets: list[str], alerting: bool) -> str:
            port = free_port()
            hosts = {"exporter:7860": "EXPORTERS", "localhost:9090": f"127.0.0.1:{port}", "alertmanager:9093": f"127.0.0.1:{am_port}"}
            path = prometheus_config(tmp_path / name if (tmp_path / name).mkdir() is None else tmp_path, rules, hosts, interval=PROMETHEUS_INTERVAL)
            doc = yaml.safe_load(path.read_text())
            for job in doc["scrape_configs"]:
                for sc in job["static_configs"]:
                    sc["targets"] = [t for target in sc["targets"] for t in (targets if target == "EXPORTERS" else [target])]
            if not alerting:
                doc.pop("alerting")
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            processes.enter_context(running(
                [prometheus_bin, f"--config.file={path}", f"--storage.tsdb.path={tmp_path / name / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                tmp_path / f"{name}.log", f"http://127.0.0.1:{port}/-/ready",
            ))  # fmt: skip
            return f"http://127.0.0.1:{port}"

        yield Stacks(
            Deployment([f"http://{s}" for s in shards], prometheus("prom-sharded", shards, alerting=True)),
            Deployment([f"http://{single}"], prometheus("prom-single", [single], alerting=False)),
            simulator,
            receiver,
        )
        with contextlib.suppress(Exception):
            http_json(f"{simulator}/control/faults", method="DELETE")


def series(base: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """The probe contract's series about providers of one exporter: (name, labels). The
    others (config_last_reload_*) are about the process: one per exporter, rightly."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items()))
        for family in text_string_to_metric_families(text)
        if family.name.startswith("crypto_api_") and not family.name.startswith("crypto_api_exporter_")
        for s in family.samples
        if "provider" in s.labels
    }


def probed(base: str) -> set[tuple[str, str]]:
    return {(dict(labels)["provider"], dict(labels)["endpoint"]) for name, labels in series(base) if name == "crypto_api_last_probe_timestamp_seconds"}


def without_instance(result: list[dict]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("instance",))) for r in result)


def test_three_shards_probe_everything_once_count_the_same_and_still_page(stacks: Stacks) -> None:
    sharded, single = stacks.sharded, stacks.single

    # Each shard says which providers it owns: the rendezvous split, disjoint, complete.
    owned = [http_json(f"{base}/api/shard") for base in sharded.exporters]
    assert [(o["shard"], o["total_shards"]) for o in owned] == [(i, SHARDS) for i in range(SHARDS)]
    for i, o in enumerate(owned):
        assert o["disabled"] == [], "every key var has a made-up key"
        assert sorted(o["providers"]) == sorted(p.name for p in REGISTRY.providers if owner(p.name, SHARDS) == i)
    assert sorted(n for o in owned for n in o["providers"]) == sorted(p.name for p in REGISTRY.providers)

    # Every endpoint of the registry probed, each by exactly one shard (first runs spread
    # over an interval; 70 providers on a shared machine: allow a few intervals).
    def all_probed() -> list[set[tuple[str, str]]] | None:
        each = [probed(base) for base in sharded.exporters]
        return each if set().union(*each) >= ENDPOINTS and probed(single.exporters[0]) >= ENDPOINTS else None

    each = wait_until(all_probed, timeout=90, interval=1, what="every endpoint probed by the shards and by the single instance")
    assert sum(len(e) for e in each) == len(ENDPOINTS), "an endpoint probed by two shards"
    for i, e in enumerate(each):
        assert {p for p, _ in e} == set(owned[i]["providers"])

    # The union of the shards' series is the single instance's. Series that exist only
    # once some outcome happened (a status code, a retry reason) depend on the
    # simulator's answers, identical for both: compared too.
    shard_series = [series(base) for base in sharded.exporters]
    union = set().union(*shard_series)
    assert sum(len(s) for s in shard_series) == len(union), "two shards expose the same series"
    missing, extra = series(single.exporters[0]) - union, union - series(single.exporters[0])
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])

    # Both Prometheus have scraped everything (three targets and one), then the overview's
    # queries: the same series, and the same counts, whether one exporter or three.
    def complete(d: Deployment, targets: int) -> bool:
        """Every target scraped, every endpoint's series there, every provider in the
        recording rule the overview's counts read."""
        scraped = len(d.query("count by (instance) (crypto_api_provider_info)")) == targets
        endpoints = d.query("count(crypto_api_last_probe_timestamp_seconds)")
        counted = d.query("sum(status:crypto_api_provider_status:count)")
        return (
            scraped
            and bool(endpoints)
            and endpoints[0]["value"][1] == str(len(ENDPOINTS))
            and bool(counted)
            and counted[0]["value"][1] == str(len(REGISTRY.providers))
        )

    for deployment, targets in ((sharded, SHARDS), (single, 1)):
        # A shared machine under a full test run can be slow: generous, and polled.
        wait_until(lambda d=deployment, t=targets: complete(d, t), timeout=240, interval=1, what="Prometheus with every endpoint and the recording rules")
    assert sharded.query("crypto_api_exporter_shard_info")
    overview = [q for q in dashboard_queries({"provider": "binance", "endpoint": ".*"}) if q.dashboard == "crypto-api-overview"]
    assert set(COUNT_PANELS) <= {q.panel for q in overview}

    def counts(deployment: Deployment) -> dict[str, object]:
        return {q.panel: without_instance(deployment.query(q.expr)) for q in overview} | {
            q.panel: [r["value"][1] for r in deployment.query(q.expr)] for q in overview if q.panel in COUNT_PANELS
        }

    # Probes keep running between the two queries: an endpoint may flip meanwhile, so
    # compare a few times until one snapshot agrees.
    def agree() -> tuple[dict, dict] | None:
        a, b = counts(sharded), counts(single)
        return (a, b) if a == b else None

    try:
        wait_until(agree, timeout=90, interval=2, what="the overview to agree")
    except AssertionError:
        a, b = counts(sharded), counts(single)
        differ = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        raise AssertionError(f"overview queries differ between three shards and one instance: {differ}") from None
    online = sharded.query('sum(status:crypto_api_provider_status:count{status="online"})')
    print(f"\noverview on three shards and on one instance: {online[0]['value'][1]} providers online of {len(REGISTRY.providers)}, {len(ENDPOINTS)} endpoints")

    # An outage of a provider one shard owns pages through the real Alertmanager.
    provider = "binance"
    down = {"alertname": "ProviderDown", "provider": provider}
    injected = time.time()
    http_json(f"{stacks.simulator}/control/faults", {"provider": provider, "status": 503}, method="POST")
    wait_until(lambda: stacks.receiver.alerts("pagerduty-critical", "firing", **down), timeout=210, interval=1, what="ProviderDown paged")
    (alert,) = stacks.receiver.alerts("pagerduty-critical", "firing", **down)[:1]
    assert alert["labels"]["category"] == "exchanges"
    print(f"ProviderDown({provider}, shard {owner(provider, SHARDS)}) paged {time.time() - injected:.0f} s after the fault")
