"""Running the real Prometheus and Alertmanager binaries in tests (and in the
alert-quality harness, bench/alert_quality.py): free ports, temp configs derived from
the committed ones, processes that are always killed, a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .conftest import ALERTMANAGER_DIR, PROMETHEUS_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, data: Any = None, method: str | None = None, timeout: float = 5) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw.strip() else None


def wait_until(check, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError, ValueError) as exc:  # not up yet
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


@contextlib.contextmanager
def running(args: list[str], log: Path, ready_url: str, timeout: float = 20, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Start a process in its own process group, wait for `ready_url`, always kill it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with urllib.request.urlopen(ready_url, timeout=1) as response:
                return response.status == 200

        wait_until(ready, timeout, what=f"{args[0]} at {ready_url}")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def running_demo(tmp: Path, exporter_port: int, simulator_port: int, *flags: str) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """`exporter demo` (the exporter and its simulator in one process) on loopback ports,
    ready once the exporter answers."""
    args = [
        sys.executable,
        "-m",
        "exporter",
        "demo",
        f"--web.listen-address=127.0.0.1:{exporter_port}",
        f"--simulator.listen-address=127.0.0.1:{simulator_port}",
        *flags,
    ]
    return running(args, tmp / "exporter.log", f"http://127.0.0.1:{exporter_port}/healthz", timeout=30)


def _routes(route: dict) -> Iterator[dict]:
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def alertmanager_config_for_test(tmp: Path, *, webhook_base: str | None = None, notify_base: str | None = None, group_wait: str | None = "1s") -> Path:
    """The committed alertmanager.yml, with only delivery changed for a test.

    Routes, grouping and inhibitions stay as committed. `group_wait` (with a 1 s
    group interval) replaces every route's timings, for tests that do not measure
    them; None keeps the committed timings. With `webhook_base`, each receiver becomes
    a webhook to `{webhook_base}/{receiver name}`. With `notify_base`, the Slack and
    PagerDuty configs stay (so the templates render for real) but post to
    `{notify_base}/slack` and `{notify_base}/pagerduty`, with the secret files
    written in `tmp`.
    """
    config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    config["templates"] = [str(ALERTMANAGER_DIR / t) for t in config["templates"]]
    if group_wait is not None:
        for route in _routes(config["route"]):
            route.pop("group_wait", None)
            route.pop("group_interval", None)
        config["route"]["group_wait"] = group_wait
        config["route"]["group_interval"] = "1s"
    if webhook_base is not None:
        config["global"].pop("slack_api_url_file", None)
        config["receivers"] = [
            {"name": r["name"], "webhook_configs": [{"url": f"{webhook_base}/{r['name']}", "send_resolved": True}]} for r in config["receivers"]
        ]
    if notify_base is not None:
        (tmp / "slack_webhook_url").write_text(f"{notify_base}/slack\n")
        (tmp / "pagerduty_routing_key").write_text("test-routing-key\n")
        config["global"]["slack_api_url_file"] = str(tmp / "slack_webhook_url")
        for receiver in config["receivers"]:
            for pd in receiver.get("pagerduty_configs", []):
                pd["routing_key_file"] = str(tmp / "pagerduty_routing_key")
                pd["url"] = f"{notify_base}/pagerduty"
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_args(binary: str, config: Path, tmp: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: a single, isolated instance
        "--log.level=debug",
    ]


def prometheus_config(tmp: Path, rules: list[Path], hosts: dict[str, str], interval: str | None = None) -> Path:
    """The committed prometheus.yml with these rule files and the compose hostnames
    mapped to loopback ports; `interval` replaces the scrape and evaluation
    intervals (None keeps the committed ones).

    A test that runs one Alertmanager maps `alertmanager:9093` to it: every node of the
    compose cluster (alertmanager-0, -1) then goes to that one, listed once."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    if interval is not None:
        config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    config["rule_files"] = [str(r) for r in rules]

    def address(target: str) -> str:
        if target not in hosts and target.startswith("alertmanager-") and "alertmanager:9093" in hosts:
            return hosts["alertmanager:9093"]
        return hosts[target]

    def remap(static_configs: list[dict]) -> None:
        for sc in static_configs:
            sc["targets"] = list(dict.fromkeys(address(t) for t in sc["targets"]))

    for job in config["scrape_configs"]:
        remap(job["static_configs"])
    for am in config["alerting"]["alertmanagers"]:
        remap(am["static_configs"])
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _duration_ms(duration: str) -> int:
    return sum(int(n) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))


def rules_with_shorter_for(tmp: Path, rules: Iterable[Path], divisor: int) -> list[Path]:
    """Copies of these rule files (in `tmp`) with every alert's `for:` divided by
    `divisor`; expressions, labels, annotations and `keep_firing_for` unchanged.

    For stack tests that check what fires and where it goes, not when: a committed
    `for: 1m` costs a minute of wall-clock time per test. The tests that measure the
    committed timings (test_e2e.py) load the committed files."""
    copies = []
    for path in rules:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = f"{max(1, _duration_ms(rule['for']) // divisor)}ms"
        copy = tmp / f"shorter-for-{path.name}"
        copy.write_text(yaml.safe_dump(doc, sort_keys=False))
        copies.append(copy)
    return copies


class WebhookReceiver:
    """An aiohttp server on its own thread and loop: Alertmanager posts to
    /<receiver name>; every payload is kept as (unix time received, path, json)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self.received.append((time.time(), request.path, payload))
        return web.json_response({"status": "ok"})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{receiver}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def payloads(self) -> list[tuple[float, str, dict]]:
        with self._lock:
            return list(self.received)

    def alerts(self, receiver: str, status: str, **labels: str) -> list[dict]:
        """Alerts with `status` and these labels that reached `receiver`."""
        return [
            alert for _, path, p in self.payloads() if path == f"/{receiver}" for alert in p["alerts"]
            if alert["status"] == status and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]  # fmt: skip

    def first(self, receiver: str, status: str, **labels: str) -> float | None:
        """When the first notification with such an alert arrived (unix time)."""
        for at, path, p in self.payloads():
            if path == f"/{receiver}" and any(a["status"] == status and all(a["labels"].get(k) == v for k, v in labels.items()) for a in p["alerts"]):
                return at
        return None
