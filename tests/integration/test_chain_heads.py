"""Chain heads end to end: the simulator's chains on loopback, the exporter's chain_head
probes, and the exact samples /metrics shows (issue 11, "What it must show" 1).

Both clocks (the simulator's heads, the exporter's wall clock) are one hand-moved clock,
so heads stand still between two probes unless the test moves time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from exporter.app import Exporter, build_app
from exporter.config import Config, parse_config
from exporter.model import Outcome
from exporter.simulator import Simulator, simulator_config
from exporter.simulator.chains import EPOCH
from exporter.web.server import WebOptions, serve
from tests.harness import SimHarness, fast

EVM_NODES = ("n1", "n2", "n3", "n4", "n5")


def chain_config() -> Config:
    def node(name: str, chain: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "kind": "chain_head", "path": f"/{name}", "chain": chain}

    eth = {"name": "ethereum", "protocol": "evm", "id": 1, "block_time": "12s"}
    sol = {"name": "solana", "protocol": "solana", "id": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d", "block_time": "400ms"}
    btc = {"name": "bitcoin", "protocol": "esplora", "id": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", "block_time": "10m"}
    return parse_config(
        {
            "providers": [
                {"name": "evm_nodes", "category": "rpc_nodes", "base_url": "https://evm.example", "endpoints": [node(n, eth) for n in EVM_NODES]},
                {"name": "sol_nodes", "category": "rpc_nodes", "base_url": "https://sol.example", "endpoints": [node("s1", sol), node("s2", sol)]},
                {"name": "btc_nodes", "category": "rpc_nodes", "base_url": "https://btc.example/api", "endpoints": [node("b1", btc), node("b2", btc)]},
            ]
        },
        env={},
    )


@dataclass
class Clock:
    now: float = EPOCH + 100_000.0

    def __call__(self) -> float:
        return self.now


class ChainHarness(SimHarness):
    clock: Clock

    async def node_fault(self, provider: str, endpoint: str, **fault: Any) -> None:
        async with self.http.post(f"{self.sim.url}/control/chains", json={"provider": provider, "endpoint": endpoint, **fault}) as resp:
            assert resp.status == 201, await resp.text()

    async def probe_all(self, provider: str, endpoints: tuple[str, ...]) -> dict[str, Any]:
        return {e: await self.probe(provider, e) for e in endpoints}


@pytest.fixture
async def chains() -> AsyncIterator[ChainHarness]:
    clock = Clock()
    config = chain_config()
    sim = Simulator(config, clock=clock)
    await sim.start("127.0.0.1", 0)
    exporter = Exporter(lambda: fast(simulator_config(config, sim.url)), process_metrics=False)
    runner, port = await serve(build_app(exporter, WebOptions(), handle_sighup=False, schedule=False), "127.0.0.1", 0)
    assert exporter._ctx is not None
    exporter._ctx.wall = exporter.exposition.clock = clock  # heads are seen (and scraped) on the clock they advance on
    async with aiohttp.ClientSession() as http:
        h = ChainHarness(sim, exporter, http, f"http://127.0.0.1:{port}")
        h.clock = clock
        yield h
    await runner.cleanup()
    await sim.stop()


def labels(endpoint: str, provider: str = "evm_nodes", chain: str = "ethereum") -> dict[str, str]:
    return {"provider": provider, "endpoint": endpoint, "chain": chain}


async def test_a_node_20_blocks_behind_shows_lag_20_and_ends_stale(chains: ChainHarness) -> None:
    await chains.node_fault("evm_nodes", "n5", lag_blocks=20)
    results = await chains.probe_all("evm_nodes", EVM_NODES)
    assert results["n5"].outcome is Outcome.STALE
    assert "behind the reference head by 20 blocks" in results["n5"].detail
    assert all(results[n].outcome is Outcome.SUCCESS for n in EVM_NODES[:4])
    assert await chains.sample("crypto_api_chain_head_lag_blocks", **labels("n5")) == 20
    assert await chains.sample("crypto_api_chain_head_lag_seconds", **labels("n5")) == 240
    assert await chains.sample("crypto_api_chain_head_lag_blocks", **labels("n1")) == 0
    assert await chains.sample("crypto_api_up", provider="evm_nodes", category="rpc_nodes", endpoint="n5") == 0


async def test_a_rogue_node_30m_blocks_ahead_leaves_healthy_lag_at_zero(chains: ChainHarness) -> None:
    await chains.node_fault("evm_nodes", "n5", ahead_blocks=30_000_000)
    results = await chains.probe_all("evm_nodes", EVM_NODES)
    assert all(r.outcome is Outcome.SUCCESS for r in results.values()), {n: r.detail for n, r in results.items()}
    true_head = chains.sim.chains.chain_head(chains.exporter.config.provider("evm_nodes").endpoint("n1").chain, chains.clock.now)  # type: ignore[arg-type]
    assert await chains.sample("crypto_api_chain_reference_head_block", chain="ethereum") == true_head
    for n in EVM_NODES[:4]:
        assert await chains.sample("crypto_api_chain_head_lag_blocks", **labels(n)) == 0
    assert await chains.sample("crypto_api_chain_head_lag_blocks", **labels("n5")) == -30_000_000


async def test_a_wrong_chain_node_fails_and_does_not_move_the_reference(chains: ChainHarness) -> None:
    await chains.probe_all("evm_nodes", EVM_NODES[:4])
    before = await chains.sample("crypto_api_chain_reference_head_block", chain="ethereum")
    await chains.node_fault("evm_nodes", "n5", wrong_chain=True, ahead_blocks=30_000_000)
    result = await chains.probe("evm_nodes", "n5")
    assert result.outcome is Outcome.BAD_PAYLOAD and "wrong chain" in result.detail
    assert await chains.sample("crypto_api_chain_id_mismatch", **labels("n5")) == 1
    assert await chains.sample("crypto_api_chain_id_mismatch", **labels("n1")) == 0
    assert await chains.sample("crypto_api_up", provider="evm_nodes", category="rpc_nodes", endpoint="n5") == 0
    assert await chains.sample("crypto_api_chain_reference_head_block", chain="ethereum") == before
    assert await chains.sample("crypto_api_chain_head_lag_blocks", **labels("n5")) is None  # not on this chain's scale


async def test_a_stuck_head_ends_stale_after_its_bound(chains: ChainHarness) -> None:
    """Ethereum: one stuck node among moving ones falls behind, and is stale past 5 blocks
    (60 s); when every node is stuck (a halted chain, or one frozen view behind all of
    them) nobody lags, and the stillness bound (120 s: 10 blocks) ends them stale."""
    await chains.node_fault("evm_nodes", "n5", stuck=True)
    await chains.probe_all("evm_nodes", EVM_NODES)
    chains.clock.now += 60.0
    assert (await chains.probe_all("evm_nodes", EVM_NODES))["n5"].outcome is Outcome.SUCCESS
    chains.clock.now += 12.0
    results = await chains.probe_all("evm_nodes", EVM_NODES)
    assert results["n5"].outcome is Outcome.STALE and "by 6 blocks" in results["n5"].detail
    assert results["n1"].outcome is Outcome.SUCCESS

    for n in EVM_NODES:
        await chains.node_fault("evm_nodes", n, stuck=True)
    await chains.probe_all("evm_nodes", EVM_NODES)
    frozen = await chains.sample("crypto_api_chain_head_last_change_timestamp_seconds", **labels("n1"))
    assert frozen == chains.clock.now
    chains.clock.now += 120.0
    assert all(r.outcome is Outcome.SUCCESS for r in (await chains.probe_all("evm_nodes", EVM_NODES[:4])).values())
    chains.clock.now += 1.0
    results = await chains.probe_all("evm_nodes", EVM_NODES[:4])
    assert all(r.outcome is Outcome.STALE and "has not moved for 121s" in r.detail for r in results.values())
    assert await chains.sample("crypto_api_chain_head_last_change_timestamp_seconds", **labels("n1")) == frozen


async def test_a_stuck_bitcoin_node_is_fine_within_a_block_and_stale_past_its_bound(chains: ChainHarness) -> None:
    """Bitcoin's 10-minute blocks: a head that has not moved for 10 minutes is normal."""
    await chains.node_fault("btc_nodes", "b2", stuck=True)
    results = await chains.probe_all("btc_nodes", ("b1", "b2"))
    assert results["b2"].outcome is Outcome.SUCCESS
    chains.clock.now += 599.0  # within the same 10-minute block for both
    results = await chains.probe_all("btc_nodes", ("b1", "b2"))
    assert results["b2"].outcome is Outcome.SUCCESS
    chains.clock.now += 5_500.0  # 6,099 s: past the 6,000 s bound (10 blocks)
    results = await chains.probe_all("btc_nodes", ("b1", "b2"))
    assert results["b2"].outcome is Outcome.STALE
    assert "behind the reference head by 10 blocks" in results["b2"].detail  # lag (2 blocks) trips before stillness here


async def test_a_syncing_node_shows_syncing_1(chains: ChainHarness) -> None:
    await chains.node_fault("evm_nodes", "n3", syncing=True)
    await chains.node_fault("sol_nodes", "s2", syncing=True)
    evm = await chains.probe_all("evm_nodes", EVM_NODES)
    sol = await chains.probe_all("sol_nodes", ("s1", "s2"))
    assert await chains.sample("crypto_api_chain_syncing", **labels("n3")) == 1
    assert await chains.sample("crypto_api_chain_syncing", **labels("n1")) == 0
    assert await chains.sample("crypto_api_chain_syncing", **labels("s2", "sol_nodes", "solana")) == 1
    assert evm["n3"].outcome is Outcome.STALE and "syncing" in evm["n3"].detail
    assert sol["s2"].outcome is Outcome.STALE and sol["s1"].outcome is Outcome.SUCCESS


async def test_solana_and_bitcoin_heads_and_times(chains: ChainHarness) -> None:
    sol = await chains.probe_all("sol_nodes", ("s1", "s2"))
    btc = await chains.probe_all("btc_nodes", ("b1", "b2"))
    assert all(r.outcome is Outcome.SUCCESS for r in (*sol.values(), *btc.values()))
    slot = await chains.sample("crypto_api_chain_head_block", **labels("s1", "sol_nodes", "solana"))
    assert slot == 250_000_000 + 100_000 / 0.4
    assert await chains.sample("crypto_api_chain_head_timestamp_seconds", **labels("s1", "sol_nodes", "solana")) == EPOCH + 100_000
    height = await chains.sample("crypto_api_chain_head_block", **labels("b1", "btc_nodes", "bitcoin"))
    assert height == 800_000 + 100_000 // 600
    assert await chains.sample("crypto_api_chain_reference_head_block", chain="bitcoin") == height
    await chains.node_fault("btc_nodes", "b2", wrong_chain=True)
    assert (await chains.probe("btc_nodes", "b2")).outcome is Outcome.BAD_PAYLOAD
    assert await chains.sample("crypto_api_chain_id_mismatch", **labels("b2", "btc_nodes", "bitcoin")) == 1


async def test_heads_advance_at_block_time(chains: ChainHarness) -> None:
    await chains.probe("evm_nodes", "n1")
    first = await chains.sample("crypto_api_chain_head_block", **labels("n1"))
    chains.clock.now += 36.0
    await chains.probe("evm_nodes", "n1")
    assert await chains.sample("crypto_api_chain_head_block", **labels("n1")) == (first or 0) + 3
    assert await chains.sample("crypto_api_chain_head_last_change_timestamp_seconds", **labels("n1")) == chains.clock.now


def shipped_chain_endpoints() -> list[tuple[str, str]]:
    from exporter.config import load_config

    return [(p.name, e.name) for p in load_config(env={}).providers for e in p.endpoints if e.chain is not None]


async def test_every_shipped_chain_endpoint_succeeds_against_the_simulator(harness: SimHarness) -> None:
    """The registry's chain_head endpoints (keys set by the harness), each probed through
    the simulator: all succeed, and each chain's nodes agree on one reference."""
    endpoints = shipped_chain_endpoints()
    assert len(endpoints) >= 6 * 3 + 2 + 2
    results = {(p, e): await harness.probe(p, e) for p, e in endpoints}
    failed = {k: (r.outcome.value, r.detail) for k, r in results.items() if r.outcome is not Outcome.SUCCESS}
    assert not failed
    samples = await harness.samples()
    chains = {dict(labels)["chain"] for name, labels in samples if name == "crypto_api_chain_reference_head_block"}
    assert chains == {"ethereum", "bsc", "polygon", "arbitrum", "base", "optimism", "solana", "bitcoin"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "evm_nodes", "endpoint": "nope", "lag_blocks": 1}, "endpoint"),
        ({"provider": "evm_nodes", "endpoint": "n1", "lag_blocks": -1}, "lag_blocks"),
        ({"provider": "evm_nodes", "endpoint": "n1", "stuck": "yes"}, "stuck"),
        ({"provider": "evm_nodes", "endpoint": "n1", "frozen": True}, "frozen"),
        ([1, 2], "body"),
    ],
)
async def test_the_chain_control_api_names_the_bad_field(chains: ChainHarness, body: Any, field: str) -> None:
    async with chains.http.post(f"{chains.sim.url}/control/chains", json=body) as resp:
        assert resp.status == 400 and (await resp.json())["field"] == field


async def test_chain_faults_are_listed_and_cleared(chains: ChainHarness) -> None:
    await chains.node_fault("evm_nodes", "n2", stuck=True)
    async with chains.http.get(f"{chains.sim.url}/control/chains") as resp:
        assert (await resp.json())["faults"] == [
            {"provider": "evm_nodes", "endpoint": "n2", "lag_blocks": 0, "stuck": True, "wrong_chain": False, "syncing": False, "ahead_blocks": 0}
        ]
    async with chains.http.delete(f"{chains.sim.url}/control/chains") as resp:
        assert (await resp.json())["cleared"] == 1
