"""A real simulator and a real exporter (with the JSON API) on loopback.

Mirrors tests/integration/conftest.py: the scheduler is off and tests drive probes with
`exporter.run_probe`, so every answer is deterministic. `start_api` takes the API's
options (tokens, allowlist, intervals), so each test builds the server it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.api import ApiOptions, ApiSettings
from exporter.app import Exporter
from exporter.config import Config, load_config
from exporter.model import ProbeResult
from exporter.server import build_app, serve
from exporter.simulator import Simulator, simulator_config

TEST_TIMEOUT = 1.0
BACKOFF = 0.01
GOOD_KEY = "good-test-key-0001"
BAD_KEY = "canary-rejected-key-9f3b7c"
TOKEN = "test-token-5d1c8e"


def key_env(config: Config) -> dict[str, str]:
    """A key for every key env var; the first Etherscan key is one the simulator rejects."""
    env = {name: f"{GOOD_KEY}-{name.lower()}" for p in config.providers for name in p.auth.env}
    env["ETHERSCAN_API_KEY_1"] = BAD_KEY
    return env


def fast(config: Config) -> Config:
    providers = []
    for p in config.providers:
        eps = tuple(replace(ep, timeout=TEST_TIMEOUT, interval=60.0, jitter=1.0, slow_threshold=0.5) for ep in p.endpoints)
        providers.append(replace(p, endpoints=eps))
    return config.with_providers(tuple(providers))


class ApiHarness:
    def __init__(self, sim: Simulator, exporter: Exporter, app: web.Application, http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> None:
        self.sim = sim
        self.app = app
        self.exporter = exporter
        self.http = http
        self.base = base
        self.headers = headers  # auth headers accepted by the server (empty when open)

    async def probe(self, provider: str, endpoint: str) -> ProbeResult:
        result = await self.exporter.run_probe(provider, endpoint)
        assert result is not None
        return result

    async def probe_all(self, provider: str) -> list[ProbeResult]:
        return [await self.probe(provider, ep.name) for ep in self.exporter.config.provider(provider).endpoints]

    async def fault(self, **spec: Any) -> None:
        async with self.http.post(f"{self.sim.url}/control/faults", json=spec) as resp:
            assert resp.status in (200, 201), await resp.text()

    async def clear(self) -> None:
        async with self.http.delete(f"{self.sim.url}/control/faults") as resp:
            assert resp.status == 200

    async def get(self, path: str, status: int = 200, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        async with self.http.get(f"{self.base}{path}", headers=headers, **kw) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == status, (resp.status, body)
            assert resp.content_type == "application/json"
            return body

    async def post(self, path: str, status: int = 200, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        async with self.http.post(f"{self.base}{path}", headers=headers, **kw) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == status, (resp.status, body)
            assert resp.content_type == "application/json"
            return body

    async def metrics_text(self) -> str:
        async with self.http.get(f"{self.base}/metrics", headers=self.headers) as resp:
            assert resp.status == 200
            return await resp.text()


StartApi = Callable[..., Awaitable[ApiHarness]]


@pytest.fixture
async def start_api() -> AsyncIterator[StartApi]:
    """`await start_api(tokens=..., allowed_ips=..., status_interval=...)`: a running harness."""
    cleanups: list[Callable[[], Awaitable[None]]] = []
    http = aiohttp.ClientSession()

    async def start(
        *,
        env: Mapping[str, str] | None = None,
        status_interval: float = 60.0,
        ping_interval: float = 60.0,
        history_interval: float = 60.0,
        queue_size: int = 256,
        use_token: bool = True,
    ) -> ApiHarness:
        shipped = load_config(env={})
        keys = key_env(shipped)
        sim = Simulator(load_config(env=keys))
        await sim.start("127.0.0.1", 0)
        cleanups.append(sim.stop)

        def loader(environ: Mapping[str, str] = keys) -> Config:
            return fast(simulator_config(load_config(env=environ), sim.url))

        settings = ApiSettings.from_env(env or {})
        options = ApiOptions(settings=settings, status_interval=status_interval, ping_interval=ping_interval, history_interval=history_interval, queue_size=queue_size)
        exporter = Exporter(loader, process_metrics=False, backoff_base=BACKOFF)
        app: web.Application = build_app(exporter, handle_sighup=False, schedule=False, api=options)
        runner, port = await serve(app, "127.0.0.1", 0)
        cleanups.append(runner.cleanup)
        headers = {"Authorization": f"Bearer {settings.tokens[0]}"} if settings.tokens and use_token else {}
        return ApiHarness(sim, exporter, app, http, f"http://127.0.0.1:{port}", headers)

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()
    await http.close()


@pytest.fixture
async def api(start_api: StartApi) -> ApiHarness:
    """An open API (no tokens, no allowlist)."""
    return await start_api()
