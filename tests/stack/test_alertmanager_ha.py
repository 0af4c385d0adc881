"""Issue 14, point 2: docker-compose.yml's two Alertmanagers as a gossip cluster on
loopback, run by the native binary with the very flags the compose file gives them
(parsed from it; only addresses, ports and paths rewritten, tests/stack/compose.py),
both fed every alert (as Prometheus sends to every Alertmanager it knows). The webhook
receives each notification exactly once while both run (the notification log is
gossiped, and the second node waits its turn), and still exactly once after one node
is killed.

The committed alertmanager.yml (routes, grouping), receivers as webhooks; a 1 s group
wait and a 2 s peer timeout so the test takes seconds, not the default 15 s per peer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .compose import ALERTMANAGERS, DUPLICATE_WINDOW, Node, alertmanager_cluster, cluster_status
from .helpers import WebhookReceiver, http_json, wait_until

pytestmark = [pytest.mark.binary, pytest.mark.wallclock, pytest.mark.timeout(180)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[Node], WebhookReceiver]]:
    receiver = WebhookReceiver()
    receiver.start()
    with contextlib.ExitStack() as stack:
        stack.callback(receiver.stop)
        yield stack.enter_context(alertmanager_cluster(tmp_path, receiver)), receiver


def alert(provider: str) -> list[dict]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "labels": {"alertname": "ProviderDown", "severity": "critical", "provider": provider, "category": "exchanges"},
            "annotations": {"summary": f"{provider} is down"},
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(minutes=5)).isoformat(),
        }
    ]


def send_to_all(nodes: list[Node], provider: str) -> int:
    """POST the alert to every node, as Prometheus does; how many took it."""
    took = 0
    for node in nodes:
        with contextlib.suppress(OSError):
            http_json(f"{node.url}/api/v2/alerts", alert(provider), method="POST")
            took += 1
    return took


def notifications(receiver: WebhookReceiver, provider: str) -> int:
    return len(receiver.alerts("pagerduty-critical", "firing", provider=provider))


def test_a_two_node_cluster_notifies_once_and_still_once_after_losing_a_node(cluster: tuple[list[Node], WebhookReceiver]) -> None:
    nodes, receiver = cluster

    # The compose file's two nodes, each seeing both (its own and the other's gossip address).
    assert [n.service for n in nodes] == ALERTMANAGERS == ["alertmanager-0", "alertmanager-1"]
    for node in nodes:
        status = cluster_status(node.url)
        assert status["status"] == "ready"
        assert sorted(p["address"] for p in status["peers"]) == sorted(n.gossip for n in nodes)
        assert status["name"] in {p["name"] for p in status["peers"]}

    # Both alive, both fed: one notification.
    assert send_to_all(nodes, "binance") == 2
    wait_until(lambda: notifications(receiver, "binance"), timeout=30, what="the notification")
    time.sleep(DUPLICATE_WINDOW)  # past the second node's turn: a duplicate would be here by now
    assert notifications(receiver, "binance") == 1

    # One node killed (no goodbye): the survivor alone notifies, once.
    os.killpg(nodes[0].pid, signal.SIGKILL)
    wait_until(lambda: send_to_all(nodes, "kraken") == 1, timeout=10, what="only one node taking alerts")
    wait_until(lambda: notifications(receiver, "kraken"), timeout=30, what="the notification from the survivor")
    time.sleep(DUPLICATE_WINDOW)
    assert notifications(receiver, "kraken") == 1
    assert notifications(receiver, "binance") == 1, "the survivor did not repeat what the cluster already sent"
