"""Schemathesis against /openapi.json: for every route, generated requests get no 500 and
no answer that breaks the document (status codes, content types, bodies, auth).

The exporter and the simulator run in a thread with their own event loop, because
schemathesis calls the server synchronously."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any, Self

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from exporter.app import build_app
from exporter.web.api import DOCUMENT, ApiOptions, ApiSettings
from exporter.web.server import WebOptions, serve
from tests.harness import simulated_exporter

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class LiveServer:
    """Simulator + exporter (API_TOKENS set, some probes done) on a private loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.base = ""
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="live-exporter", daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        sim, exporter = await simulated_exporter()
        options = ApiOptions(settings=ApiSettings(tokens=(TOKEN,)), status_interval=60, ping_interval=60)
        runner, port = await serve(build_app(exporter, WebOptions(api=options), handle_sighup=False, schedule=False), "127.0.0.1", 0)
        exporter.scheduler.apply(exporter.config)  # jobs to trigger, not started
        for provider in ("binance", "etherscan", "alternative_me", "publicnode"):  # publicnode: chain heads for /api/chains
            for ep in exporter.config.provider(provider).endpoints:
                await exporter.run_probe(provider, ep.name)
        self.base = f"http://127.0.0.1:{port}"
        self._stop = asyncio.Event()
        self.ready.set()
        await self._stop.wait()
        await runner.cleanup()
        await sim.stop()

    def __enter__(self) -> Self:
        self.thread.start()
        assert self.ready.wait(30), "the exporter did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


def test_served_document_is_the_tested_one(live_server: LiveServer) -> None:
    with urllib.request.urlopen(f"{live_server.base}/openapi.json", timeout=10) as resp:
        assert json.load(resp) == json.loads(json.dumps(DOCUMENT))


# Loaded from the module rather than over HTTP: schemathesis's lazy `from_fixture` loader
# does not work with pytest 9 (it sets a private node id); the test above pins the two equal.
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_openapi_document(case: Any, live_server: LiveServer) -> None:
    # A plain HTTP GET on a WebSocket route is answered 400 (documented): every other check
    # applies, but "schema-valid data must be accepted" cannot, without an Upgrade.
    excluded = [positive_data_acceptance] if case.path.startswith("/ws") else []
    case.call_and_validate(base_url=live_server.base, headers=AUTH, timeout=10, excluded_checks=excluded)
