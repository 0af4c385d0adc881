"""A rejected key that gets fixed upstream returns to `crypto_api_key_valid 1` without a
restart: by its re-test after a rest, or at once by `POST /api/config/keys/test`.
(The third way, a reload with a new value, is in test_reload_runtime.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from exporter.app import Exporter, build_app
from exporter.config import Config
from exporter.web.api import ApiOptions
from exporter.web.server import WebOptions, serve
from tests.harness import BAD_KEY, SimHarness, simulated_loader, start_simulated

REST = 0.0  # seconds a rejected key rests before its re-test: here, the very next probe
KEY_1 = {"provider": "etherscan", "key": "ETHERSCAN_API_KEY_1"}


@pytest.fixture
async def harness() -> AsyncIterator[SimHarness]:
    sim, keys = await start_simulated()
    base_loader = simulated_loader(sim, keys)

    def loader() -> Config:
        config = base_loader()
        return config.with_providers(tuple(replace(p, auth=replace(p.auth, retest_after=REST)) for p in config.providers))

    exporter = Exporter(loader, process_metrics=False, backoff_base=0.01)
    options = WebOptions(api=ApiOptions(enable_actions=True))
    runner, port = await serve(build_app(exporter, options, handle_sighup=False, schedule=False), "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield SimHarness(sim, exporter, http, f"http://127.0.0.1:{port}")
    await runner.cleanup()
    await sim.stop()


async def reject_key_1(h: SimHarness) -> None:
    await h.fault(provider="etherscan", invalid_keys=[BAD_KEY])  # the simulator refuses key 1's value
    r = await h.probe("etherscan", "gas_oracle")
    assert (r.outcome.value, r.key_env) == ("success", "ETHERSCAN_API_KEY_2")  # rotated
    assert await h.sample("crypto_api_key_valid", **KEY_1) == 0


async def test_a_fixed_key_comes_back_at_its_retest(harness: SimHarness) -> None:
    await reject_key_1(harness)
    await harness.clear()  # the provider re-enables the key
    r = await harness.probe("etherscan", "gas_oracle")  # key 1's re-test
    assert (r.outcome.value, r.key_env) == ("success", "ETHERSCAN_API_KEY_1")
    assert await harness.sample("crypto_api_key_valid", **KEY_1) == 1


async def test_a_fixed_key_comes_back_at_once_by_the_key_test(harness: SimHarness) -> None:
    await reject_key_1(harness)
    await harness.clear()
    async with harness.http.post(f"{harness.base}/api/config/keys/test", json={"provider": "etherscan", "endpoint": "gas_oracle"}) as resp:
        assert resp.status == 200
        results = {r["env"]: r for r in (await resp.json())["results"]}
    assert results["ETHERSCAN_API_KEY_1"]["valid"] is True
    assert await harness.sample("crypto_api_key_valid", **KEY_1) == 1


async def test_the_key_test_also_records_a_rejection(harness: SimHarness) -> None:
    await harness.fault(provider="etherscan", invalid_keys=[BAD_KEY])
    async with harness.http.post(f"{harness.base}/api/config/keys/test", json={"provider": "etherscan"}) as resp:
        results = {r["env"]: r for r in (await resp.json())["results"]}
    assert results["ETHERSCAN_API_KEY_1"]["valid"] is False and results["ETHERSCAN_API_KEY_2"]["valid"] is True
    assert await harness.sample("crypto_api_key_valid", **KEY_1) == 0
