"""What the integration and API tests share: the shipped registry pointed at an
in-process simulator on loopback, test keys, and a harness to drive probes and faults.

The exporter's scheduler stays off: tests call `probe()` (the coroutine the scheduler's
timers run), so every result is deterministic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config import Config, load_config
from exporter.model import ProbeResult
from exporter.selection import Choice, select
from exporter.simulator import Simulator, simulator_config

TEST_TIMEOUT = 1.0  # per attempt; a hang then ends after 1 + 1.5 + 2.25 s
GOOD_KEY = "good-test-key-0001"
BAD_KEY = "canary-rejected-key-9f3b7c"


def key_env(config: Config) -> dict[str, str]:
    """A key for every key env var; the first Etherscan key is the one tests make the simulator reject."""
    env = {name: f"{GOOD_KEY}-{name.lower()}" for p in config.providers for name in p.auth.env}
    env["ETHERSCAN_API_KEY_1"] = BAD_KEY
    return env


def fast(config: Config) -> Config:
    """Short timeouts; intervals long enough that 5xx backoff retries fit."""
    providers = []
    for p in config.providers:
        eps = tuple(replace(ep, timeout=TEST_TIMEOUT, interval=60.0, jitter=1.0, slow_threshold=0.5) for ep in p.endpoints)
        providers.append(replace(p, endpoints=eps))
    return config.with_providers(tuple(providers))


async def start_simulated() -> tuple[Simulator, Mapping[str, str]]:
    """A simulator serving the shipped registry, and the key env the exporter should use."""
    keys = key_env(load_config(env={}))
    sim = Simulator(load_config(env=keys))
    await sim.start("127.0.0.1", 0)
    return sim, keys


def simulated_loader(sim: Simulator, keys: Mapping[str, str], choice: Choice | None = None) -> Any:
    """The exporter's config loader: the shipped registry, on the simulator, fast, and
    the providers chosen as `run` chooses them (with every key set: all of them). `keys`
    is read at each load, so a test that changes it and reloads sees a key come or go."""
    return lambda: select(fast(simulator_config(load_config(env=keys), sim.url)), choice or Choice())


class SimHarness:
    def __init__(self, sim: Simulator, exporter: Exporter, http: aiohttp.ClientSession, base: str, headers: dict[str, str] | None = None) -> None:
        self.sim = sim
        self.exporter = exporter
        self.http = http
        self.base = base
        self.headers = headers or {}  # auth headers the server wants (none when open)

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
        async with self.http.get(f"{self.base}/metrics", headers=self.headers) as resp:
            assert resp.status == 200
            return await resp.text()

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = await self.metrics_text()
        return {(s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(text) for s in family.samples}

    async def sample(self, metric: str, /, **labels: str) -> float | None:
        return (await self.samples()).get((metric, frozenset(labels.items())))


async def simulated_exporter() -> tuple[Simulator, Exporter]:
    """A started simulator with every key of the shipped registry, and an exporter of
    that registry pointed at it on short intervals (not started)."""
    keys = key_env(load_config(env={}))
    sim = Simulator(load_config(env=keys))
    await sim.start("127.0.0.1", 0)

    def loader() -> Config:
        return fast(simulator_config(load_config(env=keys), sim.url))

    return sim, Exporter(loader, process_metrics=False, backoff_base=0.01)
