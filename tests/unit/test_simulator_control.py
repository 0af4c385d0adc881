"""The control API, key checks, quota headers and the chaos loop."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest

from exporter.config import Config, parse_config
from exporter.simulator import FaultSpec, Simulator, run_chaos
from exporter.simulator.chaos import LIFETIME_PERIODS, SCENARIOS, plan_round
from tests.clock import SetClock, virtual_time

from .conftest import StartSim

SECRET = "s3cr3t-key-value"
RPC = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
GAS = "/sim/etherscan/v2/api?chainid=1&module=gastracker&action=gasoracle"
MID_MINUTE = 1_750_000_050.0  # 30 s into the minute from ..._020 to ..._080 (June 2025)


@pytest.fixture
async def sim(config: Config, start_sim: StartSim) -> Simulator:
    return await start_sim(config, seed=9)


# ---------------------------------------------------------------- control API


async def test_health(sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{sim.url}/control/health") as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}


async def test_set_list_clear(sim: Simulator, client: aiohttp.ClientSession) -> None:
    faults = f"{sim.url}/control/faults"
    for body in (
        {"provider": "binance", "endpoint": "ping", "status": 503},
        {"provider": "binance", "latency_ms": 200},
        {"provider": "etherscan", "invalid_keys": [SECRET]},
        {"provider": "*", "stale_seconds": 60, "count": 3},
    ):
        async with client.post(faults, json=body) as r:
            assert r.status == 201, await r.text()
    async with client.get(faults) as r:
        text = await r.text()
        listed = json.loads(text)["faults"]
    assert len(listed) == 4 and SECRET not in text
    async with client.delete(faults, params={"provider": "binance", "endpoint": "ping"}) as r:
        assert await r.json() == {"cleared": 1}
    async with client.delete(faults, params={"provider": "binance"}) as r:
        assert await r.json() == {"cleared": 1}
    async with client.delete(faults) as r:
        assert await r.json() == {"cleared": 2}
    assert sim.faults.active() == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b'"binance"', "body"),
        (b'{"provider": "binance", "colour": "red"}', "colour"),
        (b'{"provider": "binance", "latency_ms": "slow"}', "latency_ms"),
        (b'{"provider": "binance", "status": 700}', "status"),
        (b'{"provider": "binance", "disconnect": 1}', "disconnect"),
        (b'{"provider": "nosuch"}', "provider"),
        (b'{"provider": "binance", "endpoint": "nosuch"}', "endpoint"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),  # a RecursionError, and a 500, before
        (b'{"provider": "binance", "redirect": "ftp://elsewhere"}', "redirect.to"),
        (b'{"provider": "binance", "maintenance": "tomorrow"}', "maintenance"),
        (b'{"provider": "binance", "frozen": "yes"}', "frozen"),
    ],
    ids=["not_json", "empty", "string", "unknown_field", "latency", "status", "flag", "provider", "endpoint", "deep", "redirect", "maintenance", "frozen"],
)
async def test_bad_fault_bodies_are_400(sim: Simulator, client: aiohttp.ClientSession, raw: bytes, field: str) -> None:
    async with client.post(f"{sim.url}/control/faults", data=raw, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        data = await r.json()
    assert data["field"] == field and data["error"].startswith(f"{field}:")
    assert sim.faults.active() == []


async def test_hostile_faults_are_set_and_listed(sim: Simulator, client: aiohttp.ClientSession) -> None:
    faults = f"{sim.url}/control/faults"
    bodies = [
        {"provider": "binance", "endpoint": "ping", "gzip_bomb": True},
        {"provider": "binance", "endpoint": "server_time", "deep_json": True},
        {"provider": "binance", "endpoint": "btc_ticker", "oversized_bytes": 20_000_000},
        {"provider": "coingecko", "slow_body": True},
        {"provider": "kraken", "redirect": "http://127.0.0.1:9/"},
    ]
    for body in bodies:
        async with client.post(faults, json=body) as r:
            assert r.status == 201, await r.text()
    async with client.get(faults) as r:
        listed = (await r.json())["faults"]
    assert listed == [
        {"provider": "binance", "endpoint": "ping", "gzip_bomb": True},
        {"provider": "binance", "endpoint": "server_time", "deep_json": 100_000},
        {"provider": "binance", "endpoint": "btc_ticker", "oversized_bytes": 20_000_000},
        {"provider": "coingecko", "slow_body": True},
        {"provider": "kraken", "redirect": {"to": "http://127.0.0.1:9", "status": 302}},
    ]


async def test_request_counts(sim: Simulator, client: aiohttp.ClientSession) -> None:
    for _ in range(2):
        async with client.get(f"{sim.url}/sim/binance/api/v3/ping") as r:
            await r.read()
    async with client.post(f"{sim.url}/sim/llamarpc", json=RPC) as r:
        await r.read()
    async with client.get(f"{sim.url}/control/requests") as r:
        data = await r.json()
    assert data["requests"] == {"binance": {"ping": 2}, "llamarpc": {"block_number": 1}}
    assert sim.request_count("binance") == 2 and sim.request_count("binance", "time") == 0


# ---------------------------------------------------------------- keys


async def test_etherscan_key_checks(sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.get(sim.url + GAS) as r:  # no key
        assert r.status == 200 and await r.json() == {"status": "0", "message": "NOTOK", "result": "Invalid API Key"}
    async with client.get(sim.url + GAS, params={"apikey": "good"}) as r:
        assert (await r.json())["status"] == "1"
    sim.set_fault(FaultSpec("etherscan", invalid_keys=(SECRET,)))
    async with client.get(sim.url + GAS, params={"apikey": SECRET}) as r:
        text = await r.text()
    assert "Invalid API Key" in text and SECRET not in text
    async with client.get(sim.url + GAS, params={"apikey": "other"}) as r:
        assert (await r.json())["status"] == "1"  # rotation to a good key works


async def test_cmc_key_checks(sim: Simulator, client: aiohttp.ClientSession) -> None:
    url = f"{sim.url}/sim/coinmarketcap/v1/key/info"
    async with client.get(url) as r:
        assert r.status == 401 and (await r.json())["status"]["error_code"] == 1001
    sim.set_fault(FaultSpec("coinmarketcap", invalid_keys="all"))
    async with client.get(url, headers={"X-CMC_PRO_API_KEY": SECRET}) as r:
        assert r.status == 401 and SECRET not in await r.text()
    sim.clear_faults()
    async with client.get(url, headers={"X-CMC_PRO_API_KEY": SECRET}) as r:
        assert r.status == 200 and (await r.json())["status"]["error_code"] == 0


async def test_path_key_and_prefixed_header(sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{sim.url}/sim/alchemy/v2/", json=RPC) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == -32600
    sim.set_fault(FaultSpec("alchemy", invalid_keys=(SECRET,)))
    async with client.post(f"{sim.url}/sim/alchemy/v2/{SECRET}", json=RPC) as r:
        assert r.status == 401 and SECRET not in await r.text()
    async with client.post(f"{sim.url}/sim/alchemy/v2/another", json=RPC) as r:
        assert r.status == 200
    sim.set_fault(FaultSpec("cryptocompare", invalid_keys=(SECRET,)))
    url = f"{sim.url}/sim/cryptocompare/data/pricemultifull?fsyms=BTC&tsyms=USD"
    async with client.get(url, headers={"authorization": f"Apikey {SECRET}"}) as r:
        data = await r.json()
    assert data["Response"] == "Error" and SECRET not in json.dumps(data)


async def test_optional_auth_accepts_no_key(sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{sim.url}/sim/coingecko/api/v3/ping") as r:
        assert r.status == 200
    sim.set_fault(FaultSpec("coingecko", invalid_keys="all"))
    async with client.get(f"{sim.url}/sim/coingecko/api/v3/ping", headers={"x-cg-demo-api-key": "k"}) as r:
        assert r.status == 401 and (await r.json())["status"]["error_code"] == 10002


# ---------------------------------------------------------------- quota headers


async def test_binance_weight_climbs(config: Config, start_sim: StartSim, client: aiohttp.ClientSession) -> None:
    clock = SetClock(MID_MINUTE)
    sim = await start_sim(config, seed=9, clock=clock)

    async def weights(n: int) -> list[int]:
        used = []
        for _ in range(n):
            async with client.get(f"{sim.url}/sim/binance/api/v3/ping") as r:
                used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        return used

    used = await weights(4)
    assert used == sorted(used) and used[-1] > used[0]
    assert used == [1, 2, 3, 4]
    clock.now += 29.0  # the last second of the minute
    assert await weights(1) == [5]
    clock.now += 1.0  # a new minute starts the count over
    assert await weights(2) == [1, 2]
    sim.set_fault(FaultSpec("binance", quota_remaining=5))
    async with client.get(f"{sim.url}/sim/binance/api/v3/ping") as r:
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "5995"


async def test_limit_remaining_reset_headers(client: aiohttp.ClientSession) -> None:
    cfg = parse_config(
        {
            "providers": [
                {
                    "name": "acme",
                    "category": "market_data",
                    "base_url": "https://api.acme.test",
                    "rate_limit": {
                        "headers": [
                            {
                                "scope": "minute",
                                "limit": "X-RateLimit-Limit",
                                "remaining": "X-RateLimit-Remaining",
                                "reset": "X-RateLimit-Reset",
                                "reset_format": "delta_s",
                            },
                            {"scope": "ms", "remaining": "X-Left", "reset": "X-Reset-Ms", "reset_format": "epoch_ms", "limit_value": 50, "window": "10s"},
                        ]
                    },
                    "endpoints": [{"name": "health", "path": "/health"}],
                }
            ]
        },
        env={},
    )
    clock = SetClock(MID_MINUTE)
    sim = Simulator(cfg, clock=clock)
    await sim.start()
    try:
        seen = []
        for _ in range(3):
            async with client.get(f"{sim.url}/sim/acme/health") as r:
                seen.append((int(r.headers["X-RateLimit-Remaining"]), int(r.headers["X-RateLimit-Reset"]), int(r.headers["X-Reset-Ms"])))
                assert r.headers["X-RateLimit-Limit"] == "120"
        remaining = [s[0] for s in seen]
        assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
        assert all(0 <= s[1] <= 60 for s in seen)
        assert all(0 <= s[2] / 1000 - clock.now <= 10.5 for s in seen)
        # (Left this minute, seconds to its reset, the 10 s window's reset in epoch ms.)
        assert seen == [(119, 30, 1_750_000_060_000), (118, 30, 1_750_000_060_000), (117, 30, 1_750_000_060_000)]
        sim.set_fault(FaultSpec("acme", quota_remaining=2))
        async with client.get(f"{sim.url}/sim/acme/health") as r:
            assert r.headers["X-RateLimit-Remaining"] == "2" and r.headers["X-Left"] == "2"
    finally:
        await sim.stop()


# ---------------------------------------------------------------- chaos


def test_chaos_rounds_cover_every_scenario(config: Config) -> None:
    rng = random.Random(1)
    names, providers = set(), set()
    for round_no in range(len(SCENARIOS)):
        planned = plan_round(config, round_no, rng)
        assert len({s.provider for _, s in planned}) == len(planned)
        names |= {n for n, _ in planned}
        providers |= {s.provider for _, s in planned}
    assert names == {n for n, _ in SCENARIOS}
    assert len(providers) >= 6


class RecordingSim(Simulator):
    """A simulator (not listening: chaos needs none) that notes the loop time of each
    fault set and cleared, by target."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.events: list[tuple[float, str, tuple[str | None, str | None]]] = []

    def set_fault(self, spec: FaultSpec) -> None:
        self.events.append((asyncio.get_running_loop().time(), "set", spec.target))
        super().set_fault(spec)

    def clear_faults(self, provider: str | None = None, endpoint: str | None = None) -> int:
        self.events.append((asyncio.get_running_loop().time(), "clear", (provider, endpoint)))
        return super().clear_faults(provider, endpoint)


@virtual_time
async def test_run_chaos_injects_rotates_and_cleans_up(config: Config) -> None:
    sim = RecordingSim(config)
    period = 20.0
    task = asyncio.create_task(run_chaos(sim, config, period=period, rng=random.Random(2)))
    await asyncio.sleep(6.5 * period)  # t=130: rounds 0 to 6 ran, at t=0, 20, ..., 120
    # The opening round injects every scenario at once, each on its own provider.
    opening = [target for t, action, target in sim.events if action == "set" and t == 0.0]
    assert len(opening) == len(SCENARIOS) and len({p for p, _ in opening}) == len(SCENARIOS)
    # Rounds keep the period to the float; each fault lives exactly LIFETIME_PERIODS.
    assert {t for t, _, _ in sim.events} <= {r * period for r in range(7)}
    born: dict[tuple[str | None, str | None], float] = {}
    for t, action, target in sim.events:
        if action == "set":
            assert target not in born
            born[target] = t
        else:
            assert t - born.pop(target) == LIFETIME_PERIODS * period
    active = sim.faults.active()
    assert {f.target for f in active} == set(born)
    assert all(t > 130.0 - LIFETIME_PERIODS * period for t in born.values())
    assert len(active) == 6  # random.Random(2)'s figure over the shipped registry: rounds 4 to 6
    assert 0 < len(active) <= 6
    assert len({f.provider for f in active}) < len(config.providers) // 2  # most stay healthy
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.faults.active() == []
    assert sorted(target for t, action, target in sim.events if action == "clear" and t == 130.0) == sorted(born)


@virtual_time
async def test_run_chaos_survives_errors(config: Config) -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls: list[float] = []

        def set_fault(self, spec: FaultSpec) -> None:
            self.calls.append(asyncio.get_running_loop().time())
            raise RuntimeError("boom")

        def clear_faults(self, provider: str | None = None, endpoint: str | None = None) -> int:
            return 0

    broken = Broken()
    task = asyncio.create_task(run_chaos(broken, config, period=20.0))  # type: ignore[arg-type]
    await asyncio.sleep(50.0)
    # A failing round ends at its first error; the next comes a period later all the same.
    assert broken.calls == [0.0, 20.0, 40.0]
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
