"""A real simulator and a real exporter (with the JSON API) on loopback.

Built on tests/harness.py, as the integration tests are: the scheduler is off and tests drive probes with
`exporter.run_probe`, so every answer is deterministic. `start_api` takes the API's
options (tokens, allowlist, intervals), so each test builds the server it needs.

The API's periodic work (WebSocket status_update and ping, chart history samples) runs on
a `ManualTimer`: it happens when a test calls `api.tick_status()` (or `tick_ping`,
`tick_history`), never because wall-clock time passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter import limits
from exporter.app import Exporter, build_app
from exporter.incidents.service import IncidentSettings
from exporter.model import ProbeResult
from exporter.redact import Redactor
from exporter.selection import Choice
from exporter.simulator import Simulator
from exporter.web.api import ApiOptions, ApiSettings
from exporter.web.api.status_page import IncidentSource
from exporter.web.server import WebOptions, serve
from tests.harness import (
    BAD_KEY,
    GOOD_KEY,
    SimHarness,
    fast,
    key_env,
    simulated_loader,
    start_simulated,
)

BACKOFF = 0.01
TOKEN = "test-token-5d1c8e"
GUARD = 5.0  # seconds: only so that a broken loop fails the test instead of hanging it
__all__ = ["BAD_KEY", "GOOD_KEY", "TOKEN", "ApiHarness", "ManualTimer", "StartApi", "fast", "key_env"]


class ManualTimer:
    """Stands in for `asyncio.sleep` in the API's periodic loops (`ApiOptions.sleep`).

    A loop that waits out `interval` goes on only when the test calls `fire(interval)`,
    which returns once that loop has done its period's work and waits again: the event it
    publishes is queued, the sample it takes is stored. Loops are told apart by their
    interval, so a test gives them different intervals."""

    def __init__(self) -> None:
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()

    async def sleep(self, interval: float) -> None:
        entry = (interval, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self._arrived.set()
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    def waiting(self, interval: float) -> int:
        return sum(1 for i, f in self._sleepers if i == interval and not f.done())

    async def fire(self, interval: float) -> None:
        woken = [f for i, f in self._sleepers if i == interval and not f.done()]
        assert woken, f"no loop waits out {interval} s"
        for f in woken:
            f.set_result(None)
        async with asyncio.timeout(GUARD):
            while self.waiting(interval) < len(woken):  # back to waiting: its work is done
                self._arrived.clear()
                await self._arrived.wait()


class ApiHarness(SimHarness):
    def __init__(
        self,
        sim: Simulator,
        exporter: Exporter,
        app: web.Application,
        http: aiohttp.ClientSession,
        base: str,
        headers: dict[str, str],
        timer: ManualTimer,
        options: ApiOptions,
    ) -> None:
        super().__init__(sim, exporter, http, base, headers)
        self.app = app
        self.timer = timer
        self.options = options
        self.keys: dict[str, str] = {}  # the env the loader reads keys from, at each (re)load

    async def tick_status(self) -> None:
        """One status_update period: the update is queued for every client that wants it."""
        await self.timer.fire(self.options.status_interval)

    async def tick_ping(self) -> None:
        await self.timer.fire(self.options.ping_interval)

    async def tick_history(self) -> None:
        """One chart history period: a sample of the state is taken."""
        await self.timer.fire(self.options.history_interval)

    async def probe_all(self, provider: str) -> list[ProbeResult]:
        return [await self.probe(provider, ep.name) for ep in self.exporter.config.provider(provider).endpoints]

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


StartApi = Callable[..., Awaitable[ApiHarness]]


@pytest.fixture
async def start_api() -> AsyncIterator[StartApi]:
    """`await start_api(tokens=..., allowed_ips=..., status_interval=...)`: a running harness."""
    cleanups: list[Callable[[], Awaitable[None]]] = []
    http = aiohttp.ClientSession()

    async def start(
        *,
        env: Mapping[str, str] | None = None,
        status_interval: float = 10.0,
        ping_interval: float = 30.0,
        history_interval: float = 60.0,
        queue_size: int = 256,
        use_token: bool = True,
        enable_actions: bool = True,
        enable_lifecycle: bool = True,
        redactor: Redactor | None = None,
        head_timeout: float = limits.HTTP_HEAD_SECONDS,
        keepalive_timeout: float = limits.HTTP_KEEPALIVE_SECONDS,
        unset_keys: tuple[str, ...] = (),
        choice: Choice | None = None,
        incidents: IncidentSettings | None = None,
        status_incidents: IncidentSource | None = None,  # the status page's, instead of the service's
    ) -> ApiHarness:
        sim, all_keys = await start_simulated()
        cleanups.append(sim.stop)
        keys = {k: v for k, v in all_keys.items() if k not in unset_keys}

        settings = ApiSettings.from_env(env or {})
        timer = ManualTimer()
        options = ApiOptions(
            settings=settings,
            status_interval=status_interval,
            ping_interval=ping_interval,
            history_interval=history_interval,
            queue_size=queue_size,
            enable_actions=enable_actions,
            sleep=timer.sleep,
            incidents=incidents or IncidentSettings(),
            status_incidents=status_incidents,
        )
        exporter = Exporter(simulated_loader(sim, keys, choice), process_metrics=False, backoff_base=BACKOFF, redactor=redactor)
        app: web.Application = build_app(exporter, WebOptions(enable_lifecycle=enable_lifecycle, api=options), handle_sighup=False, schedule=False)
        runner, port = await serve(app, "127.0.0.1", 0, head_timeout=head_timeout, keepalive_timeout=keepalive_timeout)
        cleanups.append(runner.cleanup)
        headers = {"Authorization": f"Bearer {settings.tokens[0]}"} if settings.tokens and use_token else {}
        harness = ApiHarness(sim, exporter, app, http, f"http://127.0.0.1:{port}", headers, timer, options)
        harness.keys = keys
        return harness

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()
    await http.close()


@pytest.fixture
async def api(start_api: StartApi) -> ApiHarness:
    """An open API (no tokens, no allowlist)."""
    return await start_api()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One node id per API operation of test_schemathesis.py.

    schemathesis names each operation's test `test_...[GET /api/status]`, but pytest 9
    builds a test's node id from its `originalname`, which schemathesis sets to the bare
    function name: every operation got the same node id. pytest-xdist tells tests apart
    by node id and ran one operation of the 26 (silently). The id pytest would give a
    node of that name (Node.__init__'s own fallback) fixes it."""
    for item in items:
        if getattr(item, "operation_label", None) is not None and item.nodeid != f"{item.parent.nodeid}::{item.name}":
            item._id = item.parent.id.child(item.name)
