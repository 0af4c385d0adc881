"""Reloads of hostile files through POST /-/reload (and the same code SIGHUP runs): never
a 500, the failure counted in the metric and logged, the last good config kept.

Regression (issue "Hostile input", defect 3): a non-UTF-8, deeply nested or
5,000-digit-integer file answered 500, left `crypto_api_config_last_reload_successful`
at 1 and logged nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
import yaml

from exporter.app import Exporter, build_app
from exporter.config import DEFAULT_FILE, Config, load_config
from exporter.web.server import WebOptions, serve
from tests.harness import fast, start_simulated

HOSTILE: dict[str, bytes] = {
    "not UTF-8": b"providers:\n  - name: caf\xe9\n",
    "deeply nested": b"providers: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "5,000-digit integer": b"providers:\n  - name: x\n    category: news\n    interval: " + b"9" * 5000 + b"\n",
    "NUL byte": b"providers:\n  - name: a\x00b\n",
    "1 MB of junk": b"providers:\n" + b"  - {name: p, x: [[[[}\n" * 45_000,
}


class FileHarness:
    def __init__(self, exporter: Exporter, http: aiohttp.ClientSession, base: str, path: Path) -> None:
        self.exporter, self.http, self.base, self.path = exporter, http, base, path

    async def reload(self) -> tuple[int, dict[str, object]]:
        async with self.http.post(f"{self.base}/-/reload") as resp:
            return resp.status, await resp.json()

    async def metric(self, name: str) -> float:
        async with self.http.get(f"{self.base}/metrics") as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not served")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[FileHarness]:
    sim, keys = await start_simulated()
    path = tmp_path / "providers.yaml"
    shipped = yaml.safe_load(DEFAULT_FILE.read_text())
    shipped["providers"] = [p for p in shipped["providers"] if p["name"] in ("binance", "alternative_me")]
    path.write_text(yaml.safe_dump(shipped))

    def loader() -> Config:
        return fast(load_config(path, keys))

    exporter = Exporter(loader, process_metrics=False)
    runner, port = await serve(build_app(exporter, WebOptions(enable_lifecycle=True), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield FileHarness(exporter, http, f"http://127.0.0.1:{port}", path)
    await runner.cleanup()
    await sim.stop()


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_file_fails_the_reload_cleanly(harness: FileHarness, name: str) -> None:
    before = harness.exporter.config
    assert await harness.metric("crypto_api_config_last_reload_successful") == 1
    harness.path.write_bytes(HOSTILE[name])
    with structlog.testing.capture_logs() as logs:
        status, body = await harness.reload()
    assert status == 422, body
    errors = body["errors"]
    assert isinstance(errors, list) and 1 <= len(errors) <= 101
    assert all(isinstance(e, str) and e.startswith(str(harness.path)) and "Traceback" not in e for e in errors)
    assert await harness.metric("crypto_api_config_last_reload_successful") == 0
    assert harness.exporter.config is before  # the last good config keeps running
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["config_reload_failed"] * len(errors)


async def test_a_loader_bug_is_a_failed_reload_not_a_500(harness: FileHarness) -> None:
    def broken() -> Config:
        raise TypeError("a bug in the loader")

    harness.exporter.loader = broken
    with structlog.testing.capture_logs() as logs:
        status, body = await harness.reload()
    assert status == 422
    assert body["errors"] == [f"{harness.exporter.config.source}: the file could not be loaded (TypeError); the running config is kept"]
    assert await harness.metric("crypto_api_config_last_reload_successful") == 0
    assert "config_reload_crashed" in [e["event"] for e in logs]
