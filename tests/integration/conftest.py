"""A real simulator and a real exporter on loopback, probes driven by the test.

The exporter's scheduler is not started: each test calls `probe()` (the very coroutine
the scheduler's jobs run) so results are deterministic, then scrapes `/metrics` over
HTTP and reads the exact samples."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config import Config, load_config
from exporter.model import ProbeResult
from exporter.server import build_app, serve
from exporter.simulator import Simulator, simulator_config

TEST_TIMEOUT = 1.0  # per attempt; a hang then ends after 1 + 1.5 + 2.25 s
BACKOFF = 0.05  # seconds before the first 5xx retry; doubled for the second
GOOD_KEY = "good-test-key-0001"
BAD_KEY = "canary-rejected-key-9f3b7c"


def test_env(config: Config) -> dict[str, str]:
    """A key for every key env var; the first Etherscan key is the one the simulator will reject."""
    env = {name: f"{GOOD_KEY}-{name.lower()}" for p in config.providers for name in p.auth.env}
    env["ETHERSCAN_API_KEY_1"] = BAD_KEY
    return env


def fast(config: Config) -> Config:
    providers = []
    for p in config.providers:
        eps = tuple(replace(ep, timeout=TEST_TIMEOUT, interval=60.0, jitter=1.0, slow_threshold=0.5) for ep in p.endpoints)
        providers.append(replace(p, endpoints=eps))
    return config.with_providers(tuple(providers))


class Harness:
    def __init__(self, sim: Simulator, exporter: Exporter, http: aiohttp.ClientSession, base: str) -> None:
        self.sim = sim
        self.exporter = exporter
        self.http = http
        self.base = base

    async def probe(self, provider: str, endpoint: str) -> ProbeResult:
        result = await self.exporter.run_probe(provider, endpoint)
        assert result is not None
        return result

    async def fault(self, **spec: Any) -> None:
        async with self.http.post(f"{self.sim.url}/control/faults", json=spec) as resp:
            assert resp.status in (200, 201), await resp.text()

    async def clear(self) -> None:
        async with self.http.delete(f"{self.sim.url}/control/faults") as resp:
            assert resp.status == 200

    async def metrics_text(self) -> str:
        async with self.http.get(f"{self.base}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = await self.metrics_text()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def sample(self, metric: str, /, **labels: str) -> float | None:
        return (await self.samples()).get((metric, frozenset(labels.items())))


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    shipped = load_config(env={})
    env = test_env(shipped)
    sim = Simulator(load_config(env=env))
    await sim.start("127.0.0.1", 0)

    def loader(environ: Mapping[str, str] = env) -> Config:
        return fast(simulator_config(load_config(env=environ), sim.url))

    exporter = Exporter(loader, process_metrics=False, backoff_base=BACKOFF)
    app: web.Application = build_app(exporter, handle_sighup=False, schedule=False)
    runner, port = await serve(app, "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield Harness(sim, exporter, http, f"http://127.0.0.1:{port}")
    await runner.cleanup()
    await sim.stop()
