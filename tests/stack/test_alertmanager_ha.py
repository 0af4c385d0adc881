"""Issue 14, point 2: Alertmanager as a two-node gossip cluster on loopback, both fed
every alert (as Prometheus sends to every Alertmanager it knows). The webhook receives
each notification exactly once while both run (the notification log is gossiped, and
the second peer waits its turn), and still exactly once after one node is killed.

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

from .conftest import alertmanager_binary
from .helpers import WebhookReceiver, alertmanager_config_for_test, free_port, http_json, running, wait_until

pytestmark = [pytest.mark.binary, pytest.mark.wallclock, pytest.mark.timeout(180)]

PEER_TIMEOUT = 2.0


def node_args(binary: str, config: Path, tmp: Path, name: str, port: int, cluster: int, peer: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={tmp / name}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--cluster.listen-address=127.0.0.1:{cluster}",
        f"--cluster.advertise-address=127.0.0.1:{cluster}",
        f"--cluster.peer=127.0.0.1:{peer}",
        f"--cluster.peer-timeout={PEER_TIMEOUT:g}s",
        "--cluster.gossip-interval=100ms",
        "--cluster.pushpull-interval=1s",
        "--log.level=debug",
    ]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[str], list[int], WebhookReceiver]]:
    binary = alertmanager_binary()
    receiver = WebhookReceiver()
    receiver.start()
    config = alertmanager_config_for_test(tmp_path, webhook_base=receiver.url, group_wait="1s")
    web, gossip = [free_port(), free_port()], [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in web]
    with contextlib.ExitStack() as processes:
        processes.callback(receiver.stop)
        pids = []
        for i in range(2):
            proc = processes.enter_context(running(
                node_args(binary, config, tmp_path, f"am{i}", web[i], gossip[i], gossip[1 - i]),
                tmp_path / f"am{i}.log", f"{urls[i]}/-/ready",
            ))  # fmt: skip
            pids.append(proc.pid)
        yield urls, pids, receiver


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


def send_to_all(urls: list[str], provider: str) -> int:
    """POST the alert to every node, as Prometheus does; how many took it."""
    took = 0
    for url in urls:
        with contextlib.suppress(OSError):
            http_json(f"{url}/api/v2/alerts", alert(provider), method="POST")
            took += 1
    return took


def notifications(receiver: WebhookReceiver, provider: str) -> int:
    return len(receiver.alerts("pagerduty-critical", "firing", provider=provider))


def test_a_two_node_cluster_notifies_once_and_still_once_after_losing_a_node(cluster: tuple[list[str], list[int], WebhookReceiver]) -> None:
    urls, pids, receiver = cluster
    wait_until(
        lambda: all(len(http_json(f"{u}/api/v2/status")["cluster"]["peers"]) == 2 for u in urls)
        and all(http_json(f"{u}/api/v2/status")["cluster"]["status"] == "ready" for u in urls),
        timeout=30, what="both nodes see each other",
    )  # fmt: skip

    # Both alive, both fed: one notification.
    assert send_to_all(urls, "binance") == 2
    wait_until(lambda: notifications(receiver, "binance"), timeout=30, what="the notification")
    time.sleep(1 + 3 * PEER_TIMEOUT)  # past the second peer's turn: a duplicate would be here by now
    assert notifications(receiver, "binance") == 1

    # One node killed (no goodbye): the survivor alone notifies, once.
    os.killpg(pids[0], signal.SIGKILL)
    wait_until(lambda: send_to_all(urls, "kraken") == 1, timeout=10, what="only one node taking alerts")
    wait_until(lambda: notifications(receiver, "kraken"), timeout=30, what="the notification from the survivor")
    time.sleep(1 + 3 * PEER_TIMEOUT)
    assert notifications(receiver, "kraken") == 1
    assert notifications(receiver, "binance") == 1, "the survivor did not repeat what the cluster already sent"
