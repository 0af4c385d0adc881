"""Reloads and the provider runtime (breaker, keys, budget): /metrics shows, right after a
reload and before any probe, what the next probe will use.

Regression: the breaker and key states used to be copied into the store from probe
results, so after a reload that replaced the breaker or rotated a key, /metrics kept
showing `circuit_breaker_state{state="open"} 1` and `key_valid 0` until the next probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import pytest

from exporter.app import Exporter, build_app
from exporter.config import Config, load_config
from exporter.simulator import Simulator, simulator_config
from exporter.web.server import WebOptions, serve
from tests.harness import BAD_KEY, SimHarness, fast, start_simulated

Edit = Callable[[Config], Config]


class Reloadable(SimHarness):
    """A harness whose config can be edited (the file's content, or its env), then
    reloaded as SIGHUP would."""

    def __init__(self, sim: Simulator, exporter: Exporter, http: aiohttp.ClientSession, base: str, env: dict[str, str], edits: list[Edit]) -> None:
        super().__init__(sim, exporter, http, base)
        self._env = env
        self._edits = edits

    def reload_with(self, edit: Edit | None = None, **env: str) -> None:
        if edit is not None:
            self._edits[:] = [edit]
        self._env.update(env)
        assert self.exporter.reload() == []


@pytest.fixture
async def harness() -> AsyncIterator[Reloadable]:
    sim, keys = await start_simulated()
    env = dict(keys)
    edits: list[Edit] = []

    def loader() -> Config:
        config = fast(simulator_config(load_config(env=env), sim.url))
        return edits[0](config) if edits else config

    exporter = Exporter(loader, process_metrics=False, backoff_base=0.01)
    runner, port = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    async with aiohttp.ClientSession() as http:
        yield Reloadable(sim, exporter, http, f"http://127.0.0.1:{port}", env, edits)
    await runner.cleanup()
    await sim.stop()


def with_provider(name: str, **changes: object) -> Edit:
    def edit(config: Config) -> Config:
        return config.with_providers(tuple(replace(p, **changes) if p.name == name else p for p in config.providers))  # type: ignore[arg-type]

    return edit


async def open_breaker(h: Reloadable, provider: str) -> None:
    await h.fault(provider=provider, status=503)
    threshold = h.exporter.config.provider(provider).circuit_breaker.failure_threshold
    endpoint = h.exporter.config.provider(provider).endpoints[0].name
    for _ in range(threshold):
        await h.probe(provider, endpoint)
    assert await h.sample("crypto_api_circuit_breaker_state", provider=provider, state="open") == 1


async def test_a_changed_breaker_spec_closes_the_breaker_at_once(harness: Reloadable) -> None:
    await open_breaker(harness, "bybit")
    spec = harness.exporter.config.provider("bybit").circuit_breaker
    harness.reload_with(with_provider("bybit", circuit_breaker=replace(spec, failure_threshold=spec.failure_threshold + 1)))
    # No probe since the reload: /metrics already shows the new, closed breaker.
    assert await harness.sample("crypto_api_circuit_breaker_state", provider="bybit", state="closed") == 1
    assert await harness.sample("crypto_api_circuit_breaker_state", provider="bybit", state="open") == 0


async def test_an_unchanged_breaker_spec_stays_open_across_a_reload(harness: Reloadable) -> None:
    await open_breaker(harness, "bybit")
    harness.reload_with()
    assert await harness.sample("crypto_api_circuit_breaker_state", provider="bybit", state="open") == 1
    r = await harness.probe("bybit", harness.exporter.config.provider("bybit").endpoints[0].name)
    assert r.outcome.value == "circuit_open"  # and the probe agrees with /metrics


async def test_a_rotated_key_value_is_valid_at_once_and_an_unchanged_one_stays_rejected(harness: Reloadable) -> None:
    await harness.fault(provider="etherscan", invalid_keys=[BAD_KEY])
    await harness.probe("etherscan", "gas_oracle")
    key_1 = {"provider": "etherscan", "key": "ETHERSCAN_API_KEY_1"}
    assert await harness.sample("crypto_api_key_valid", **key_1) == 0
    harness.reload_with()  # same value: still known bad
    assert await harness.sample("crypto_api_key_valid", **key_1) == 0
    harness.reload_with(ETHERSCAN_API_KEY_1="a-freshly-issued-key-0042")
    assert await harness.sample("crypto_api_key_valid", **key_1) == 1
    # The key in use (the second, taken over at the rejection) stays in use: no flapping.
    r = await harness.probe("etherscan", "gas_oracle")
    assert (r.outcome.value, r.key_env) == ("success", "ETHERSCAN_API_KEY_2")
    assert await harness.sample("crypto_api_key_valid", **key_1) == 1


async def test_a_budget_keeps_what_it_spent_unless_its_spec_changes(harness: Reloadable) -> None:
    budget = harness.exporter.config.provider("newsapi").budget
    assert budget is not None
    scope = {"provider": "newsapi", "scope": "budget"}
    await harness.probe("newsapi", "everything")
    spent = budget.requests - (await harness.sample("crypto_api_rate_limit_remaining", **scope) or 0)
    assert spent >= 1
    harness.reload_with()  # a reload must not grant a second quota
    assert await harness.sample("crypto_api_rate_limit_remaining", **scope) == budget.requests - spent
    harness.reload_with(with_provider("newsapi", budget=replace(budget, requests=budget.requests + 10)))
    assert await harness.sample("crypto_api_rate_limit_remaining", **scope) == budget.requests + 10
    assert await harness.sample("crypto_api_rate_limit_limit", **scope) == budget.requests + 10


async def test_a_removed_budget_removes_its_series(harness: Reloadable) -> None:
    harness.reload_with(with_provider("newsapi", budget=None))
    assert await harness.sample("crypto_api_rate_limit_limit", provider="newsapi", scope="budget") is None
