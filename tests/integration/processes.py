"""Running the real CLI as a subprocess, on free loopback ports, output captured to files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from exporter.config import DEFAULT_FILE

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Process:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)


@contextmanager
def cli(args: list[str], tmp: Path, env: Mapping[str, str] | None = None, name: str = "exporter") -> Iterator[Process]:
    log = tmp / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_KEY_1", "_API_KEY_2"))}
    full_env.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exporter", *args], stdout=out, stderr=subprocess.STDOUT, env=full_env)
    try:
        yield Process(proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def registry_subset(names: list[str], base_url: str, interval: str = "2s", timeout: str = "1s") -> dict[str, Any]:
    """The shipped providers named, pointed at the simulator, on a short schedule."""
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    providers = []
    for p in data["providers"]:
        if p["name"] not in names:
            continue
        for key in ("interval", "timeout", "jitter", "slow_threshold"):
            p.pop(key, None)
        p["base_url"] = f"{base_url}/sim/{p['name']}{urllib.parse.urlparse(p['base_url']).path}"
        for ep in p["endpoints"]:
            ep.update(interval=interval, timeout=timeout, jitter="0s")
            ep.pop("slow_threshold", None)
            if ep.get("status", {}).get("base_url"):  # a status page on another host: the simulator too
                ep["status"]["base_url"] = p["base_url"]
        providers.append(p)
    return {"providers": providers}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
