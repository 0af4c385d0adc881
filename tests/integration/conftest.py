"""A real simulator and a real exporter on loopback; probes driven by the test, /metrics
read over HTTP as Prometheus would (see tests/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exporter.app import Exporter, build_app
from exporter.web.server import WebOptions, serve
from tests.harness import BAD_KEY, GOOD_KEY, TEST_TIMEOUT, SimHarness, simulated_loader, start_simulated

__all__ = ["BAD_KEY", "GOOD_KEY", "TEST_TIMEOUT", "Harness"]
BACKOFF = 0.05  # seconds before the first 5xx retry; doubled for the second
Harness = SimHarness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    sim, keys = await start_simulated()
    exporter = Exporter(simulated_loader(sim, keys), process_metrics=False, backoff_base=BACKOFF)
    runner, port = await serve(build_app(exporter, WebOptions(enable_lifecycle=True), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield Harness(sim, exporter, http, f"http://127.0.0.1:{port}")
    await runner.cleanup()
    await sim.stop()
