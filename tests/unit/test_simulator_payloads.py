"""Simulator payload shapes, routing and config rewriting."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from exporter.config import Config, parse_config
from exporter.simulator import Simulator, simulator_config

from .conftest import StartSim

RPC = {"jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber", "params": []}


@pytest.fixture
async def sim(config: Config, start_sim: StartSim) -> Simulator:
    return await start_sim(config, seed=11)


async def get_json(client: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, Any, Any]:
    async with client.get(url, **kw) as r:
        return r.status, await r.json(content_type=None), r.headers


def test_simulator_config_rewrites_base_urls_only(config: Config) -> None:
    sim_cfg = simulator_config(config, "http://127.0.0.1:9999/")
    assert sim_cfg.provider("infura").base_url == "http://127.0.0.1:9999/sim/infura/v3/{key}"
    assert sim_cfg.provider("coingecko").base_url == "http://127.0.0.1:9999/sim/coingecko/api/v3"
    assert sim_cfg.provider("publicnode").base_url == "http://127.0.0.1:9999/sim/publicnode"
    assert sim_cfg.provider("etherscan").endpoints == config.provider("etherscan").endpoints
    assert sim_cfg.provider("etherscan").auth == config.provider("etherscan").auth


async def test_coingecko_shape(sim: Simulator, client: aiohttp.ClientSession) -> None:
    status, data, _ = await get_json(client, f"{sim.url}/sim/coingecko/api/v3/ping")
    assert status == 200 and data == {"gecko_says": "(V3) To the Moon!"}
    params = {"ids": "bitcoin", "vs_currencies": "usd", "include_last_updated_at": "true"}
    status, data, _ = await get_json(client, f"{sim.url}/sim/coingecko/api/v3/simple/price", params=params)
    assert set(data["bitcoin"]) == {"usd", "last_updated_at"}
    assert 85_000 < data["bitcoin"]["usd"] < 105_000
    assert abs(time.time() - data["bitcoin"]["last_updated_at"]) < 120


async def test_binance_ticker_shape(sim: Simulator, client: aiohttp.ClientSession) -> None:
    status, data, headers = await get_json(client, f"{sim.url}/sim/binance/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})
    assert status == 200
    assert isinstance(data["lastPrice"], str) and float(data["lastPrice"]) > 0
    assert abs(data["closeTime"] / 1000 - time.time()) < 5
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_etherscan_dispatches_on_module_and_action(sim: Simulator, client: aiohttp.ClientSession) -> None:
    base = f"{sim.url}/sim/etherscan/v2/api"
    q = {"chainid": "1", "apikey": "k1"}
    _, gas, _ = await get_json(client, base, params={**q, "module": "gastracker", "action": "gasoracle"})
    assert gas["status"] == "1" and set(gas["result"]) >= {"SafeGasPrice", "ProposeGasPrice", "FastGasPrice", "LastBlock"}
    _, block, _ = await get_json(client, base, params={**q, "module": "proxy", "action": "eth_blockNumber"})
    assert block["result"].startswith("0x")
    assert int(block["result"], 16) == int(gas["result"]["LastBlock"])


async def test_json_rpc_heights_increase_and_keep_ids(sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{sim.url}/sim/publicnode", json=RPC) as r:
        first = await r.json()
    assert first["id"] == 7 and first["jsonrpc"] == "2.0"
    later = int(first["result"], 16)
    assert later > 21_000_000
    block_req = {**RPC, "method": "eth_getBlockByNumber", "params": ["latest", False]}
    async with client.post(f"{sim.url}/sim/publicnode", json=block_req) as r:
        block = (await r.json())["result"]
    assert int(block["number"], 16) >= later
    assert abs(time.time() - int(block["timestamp"], 16)) < 30
    assert sim.request_count("publicnode") == 2
    assert sim.request_count("publicnode", "latest_block") == 1


async def test_prices_agree_across_providers(sim: Simulator, client: aiohttp.ClientSession) -> None:
    _, gecko, _ = await get_json(
        client, f"{sim.url}/sim/coingecko/api/v3/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd", "include_last_updated_at": "true"}
    )
    _, okx, _ = await get_json(client, f"{sim.url}/sim/okx/api/v5/market/ticker", params={"instId": "BTC-USDT"})
    _, bybit, _ = await get_json(client, f"{sim.url}/sim/bybit/v5/market/tickers", params={"category": "spot", "symbol": "BTCUSDT"})
    prices = [gecko["bitcoin"]["usd"], float(okx["data"][0]["last"]), float(bybit["result"]["list"][0]["lastPrice"])]
    assert max(prices) / min(prices) - 1 < 0.002


async def test_fear_greed_and_text_endpoints(sim: Simulator, client: aiohttp.ClientSession) -> None:
    _, fng, _ = await get_json(client, f"{sim.url}/sim/alternative_me/fng/", params={"limit": "1"})
    item = fng["data"][0]
    assert fng["metadata"] == {"error": None}
    assert 0 <= int(item["value"]) <= 100 and int(item["timestamp"]) % 86400 == 0
    async with client.get(f"{sim.url}/sim/mempool_space/api/blocks/tip/height") as r:
        assert r.content_type == "text/plain"
        assert int(await r.text()) > 870_000


async def test_unknown_provider_and_endpoint_are_404(sim: Simulator, client: aiohttp.ClientSession) -> None:
    status, data, _ = await get_json(client, f"{sim.url}/sim/nope/x")
    assert status == 404 and "error" in data
    status, data, _ = await get_json(client, f"{sim.url}/sim/binance/api/v3/nothing")
    assert status == 404 and "error" in data
    # A query param the endpoint needs is missing: not that endpoint.
    status, _, _ = await get_json(client, f"{sim.url}/sim/binance/api/v3/ticker/24hr")
    assert status == 404
    async with client.get(f"{sim.url}/control/requests") as r:
        assert (await r.json())["unmatched"] == {"binance": 2}


async def test_generic_payload_for_user_endpoints(client: aiohttp.ClientSession) -> None:
    cfg = parse_config(
        {
            "providers": [
                {"name": "acme", "category": "market_data", "base_url": "https://api.acme.test/v1", "endpoints": [{"name": "health", "path": "/health"}]}
            ]
        },
        env={},
    )
    sim = Simulator(cfg)
    await sim.start()
    try:
        status, data, _ = await get_json(client, f"{sim.url}/sim/acme/v1/health")
        assert status == 200 and data["ok"] is True and abs(data["timestamp"] - time.time()) < 5
        # Serves reloaded configs.
        sim.update_config(
            parse_config(
                {
                    "providers": [
                        {"name": "acme", "category": "market_data", "base_url": "https://api.acme.test/v2", "endpoints": [{"name": "health", "path": "/up"}]}
                    ]
                },
                env={},
            )
        )
        status, _, _ = await get_json(client, f"{sim.url}/sim/acme/v2/up")
        assert status == 200
    finally:
        await sim.stop()


async def test_rewritten_config_is_served_too(config: Config, client: aiohttp.ClientSession) -> None:
    sim = Simulator(config)
    await sim.start()
    try:
        sim.update_config(simulator_config(config, sim.url))
        status, data, _ = await get_json(client, f"{sim.url}/sim/coingecko/api/v3/ping")
        assert status == 200 and "gecko_says" in data
    finally:
        await sim.stop()
