"""docker-compose.yml as data, for the tests that check it (test_compose.py) and the
tests that run what it runs with the native binaries, no Docker engine needed: the
Alertmanager cluster's commands, parsed from the file, with only addresses, ports and
paths rewritten for loopback (test_alertmanager_ha.py, test_prometheus_ha.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .conftest import ALERTMANAGER_DIR, REPO, alertmanager_binary
from .helpers import WebhookReceiver, alertmanager_config_for_test, free_port, http_json, running, wait_until

BASE = REPO / "docker-compose.yml"
COMPOSE = yaml.safe_load(BASE.read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
# The nodes of the Alertmanager gossip cluster, in the order Prometheus lists them.
ALERTMANAGERS = sorted(name for name in SERVICES if name.startswith("alertmanager-"))
GOSSIP_PORT = 9094  # --cluster.listen-address's port in every node's command

# Faster than production, so a test takes seconds: each node waits its position times
# the peer timeout (15 s by default) before it sends, and gossip converges sooner.
# These are added, never rewritten: the compose commands leave them at their defaults.
TEST_PEER_TIMEOUT = 2.0
# A duplicate from the second node would come one peer timeout after the first node's
# notification (its position, 1, times the timeout) plus a group wait: wait twice that.
DUPLICATE_WINDOW = 1 + 2 * TEST_PEER_TIMEOUT
TEST_TIMINGS = (f"--cluster.peer-timeout={TEST_PEER_TIMEOUT:g}s", "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=1s")


def published(service: dict) -> dict[int, int]:
    """{container port: host port} of a service's `ports`."""
    out = {}
    for port in service.get("ports", []):
        host, container = str(port).rsplit(":", 1)[-2:] if str(port).count(":") else (port, port)
        out[int(container)] = int(host)
    return out


def flag(service: str, name: str) -> list[str]:
    """Every value of `--name=value` in a service's command, in order."""
    return [a.split("=", 1)[1] for a in SERVICES[service]["command"] if a.startswith(f"{name}=")]


def mounted(service: str, name: str) -> Path:
    """The host file a service's `--name=/container/path` reads through its bind mounts."""
    (value,) = flag(service, name)
    for volume in SERVICES[service]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith(".") and value.startswith(target.rstrip("/") + "/"):
            return REPO / source / value[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{service}: {value} is not on a bind mount")


@dataclass(frozen=True)
class Loopback:
    """Where each compose service's ports land on 127.0.0.1 for a test."""

    web: dict[str, int]
    gossip: dict[str, int]

    @classmethod
    def free(cls, names: Sequence[str]) -> Loopback:
        return cls({n: free_port() for n in names}, {n: free_port() for n in names})


def alertmanager_command(service: str, binary: str, config: Path, storage: Path, ports: Loopback) -> list[str]:
    """The compose service's command for the native binary on loopback: the same flags in
    the same order, only addresses, ports and paths rewritten. A flag this does not know
    stays as it is, so a flag added to the compose file is tested as written."""
    args = [binary]
    for arg in SERVICES[service]["command"]:
        name, _, value = arg.partition("=")
        if name == "--config.file":
            value = str(config)
        elif name == "--storage.path":
            value = str(storage)
        elif name == "--web.external-url":
            value = f"http://127.0.0.1:{ports.web[service]}"
        elif name == "--cluster.listen-address":
            assert value == f"0.0.0.0:{GOSSIP_PORT}", f"{service}: {arg}"
            value = f"127.0.0.1:{ports.gossip[service]}"
        elif name == "--cluster.peer":
            host, port = value.rsplit(":", 1)
            assert host in ports.gossip and int(port) == GOSSIP_PORT, f"{service}: {arg} is not another node's gossip port"
            value = f"127.0.0.1:{ports.gossip[host]}"
        args.append(f"{name}={value}")
    # In compose, the image's default web address (:9093) in the container's own network,
    # and the container's address advertised to peers; on loopback, both made explicit.
    return [*args, f"--web.listen-address=127.0.0.1:{ports.web[service]}", f"--cluster.advertise-address=127.0.0.1:{ports.gossip[service]}"]


@dataclass(frozen=True)
class Node:
    service: str
    url: str
    gossip: str
    pid: int


def cluster_status(url: str) -> dict:
    return http_json(f"{url}/api/v2/status")["cluster"]


@contextlib.contextmanager
def alertmanager_cluster(tmp: Path, receiver: WebhookReceiver) -> Iterator[list[Node]]:
    """docker-compose.yml's Alertmanager nodes as native processes on loopback, each
    receiver a webhook to `receiver`; yields once every node sees every other (ready)."""
    binary = alertmanager_binary()
    ports = Loopback.free(ALERTMANAGERS)
    configs = {mounted(s, "--config.file").resolve() for s in ALERTMANAGERS}
    # alertmanager_config_for_test derives its file from the committed one compose mounts.
    assert configs == {(ALERTMANAGER_DIR / "alertmanager.yml").resolve()}, configs
    config = alertmanager_config_for_test(tmp, webhook_base=receiver.url, group_wait="1s")
    nodes = []
    with contextlib.ExitStack() as processes:
        for service in ALERTMANAGERS:
            url = f"http://127.0.0.1:{ports.web[service]}"
            args = [*alertmanager_command(service, binary, config, tmp / service, ports), *TEST_TIMINGS, "--log.level=debug"]
            proc = processes.enter_context(running(args, tmp / f"{service}.log", f"{url}/-/ready"))
            nodes.append(Node(service, url, f"127.0.0.1:{ports.gossip[service]}", proc.pid))

        def formed() -> bool:
            statuses = [cluster_status(n.url) for n in nodes]
            return all(s["status"] == "ready" and {p["address"] for p in s["peers"]} == {n.gossip for n in nodes} for s in statuses)

        wait_until(formed, timeout=30, what=f"a cluster of {len(nodes)}, every node seeing every other")
        yield nodes
