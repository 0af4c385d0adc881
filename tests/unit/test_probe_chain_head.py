"""The chain_head kind against aioresponses (mocks for the prober only; the simulator
tests are in tests/integration/test_chain_heads.py), and its config: defaults from the
block time, located errors naming provider and field."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml
from aioresponses import aioresponses

from exporter.chains import Chains, ChainSpec, chain_members
from exporter.config import Config, ConfigError, parse_config
from exporter.model import Outcome
from exporter.probes import ProbeContext, ProbeSpec
from exporter.probes.chain_head import probe
from exporter.redact import Redactor
from exporter.runtime import ProviderRuntime

from . import aioresponses_compat

aioresponses_compat.patch()

NOW = 1_790_000_000.0
SECRET = "canary-chain-key-4321"


def config(protocol: str = "evm", chain_id: str | int = 1, **chain: Any) -> Config:
    return parse_config(
        {
            "providers": [
                {
                    "name": "node",
                    "category": "rpc_nodes",
                    "base_url": "https://rpc.example.test/v3/{key}",
                    "auth": {"type": "path", "env": ["NODE_KEY"]},
                    "endpoints": [
                        {
                            "name": "head",
                            "kind": "chain_head",
                            "chain": {"name": "ethereum", "protocol": protocol, "id": chain_id, "block_time": "12s", **chain},
                        },
                        {"name": "head2", "kind": "chain_head", "chain": {"name": "ethereum", "protocol": protocol, "id": chain_id, "block_time": "12s"}},
                    ],
                }
            ]
        },
        env={"NODE_KEY": SECRET},
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def mocked() -> Any:
    with aioresponses() as m:
        yield m


async def run(session: aiohttp.ClientSession, cfg: Config, endpoint: str = "head", chains: Chains | None = None) -> Any:
    provider = cfg.providers[0]
    chains = chains or Chains()
    chains.apply(chain_members(cfg))
    ctx = ProbeContext(session=session, redactor=Redactor(cfg.secrets()), wall=lambda: NOW, monotonic=lambda: NOW, chains=chains)
    return await probe(ctx, ProbeSpec(provider, provider.endpoint(endpoint), ProviderRuntime.fresh(provider)))


def evm_batch(chain_id: str = "0x1", number: int = 20_000_000, syncing: Any = False) -> list[dict[str, Any]]:
    block = {"number": hex(number), "timestamp": hex(int(NOW) - 3)}
    return [{"jsonrpc": "2.0", "id": 1, "result": chain_id}, {"jsonrpc": "2.0", "id": 2, "result": block}, {"jsonrpc": "2.0", "id": 3, "result": syncing}]


URL = re.compile(r"^https://rpc\.example\.test/v3/.*$")


async def test_evm_batch_success_records_the_head_with_its_time(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, payload=evm_batch())
    chains = Chains()
    result = await run(session, config(), chains=chains)
    assert result.outcome is Outcome.SUCCESS and result.http_codes == (200,)
    assert result.data_timestamp == int(NOW) - 3
    view = chains.views(NOW)[0]
    assert view.head is not None and view.head.block == 20_000_000
    sent = next(iter(mocked.requests.values()))[0].kwargs["data"]
    assert b'"eth_chainId"' in sent and b'"eth_getBlockByNumber"' in sent and b'"eth_syncing"' in sent


async def test_a_node_that_refuses_batches_is_asked_one_call_at_a_time(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, payload={"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch not supported"}})
    for answer in evm_batch():
        mocked.post(URL, payload=answer)
    result = await run(session, config())
    assert result.outcome is Outcome.SUCCESS, result.detail
    assert result.http_codes == (200, 200, 200, 200)


async def test_a_rate_limited_batch_is_not_retried_call_by_call(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, payload={"jsonrpc": "2.0", "id": None, "error": {"code": -32005, "message": "limit exceeded"}})
    result = await run(session, config())
    assert result.outcome is Outcome.RATE_LIMITED and result.http_codes == (200,)


async def test_wrong_chain_id_is_bad_payload(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, payload=evm_batch(chain_id="0x38"))
    result = await run(session, config())
    assert result.outcome is Outcome.BAD_PAYLOAD
    assert result.detail == "wrong chain: the node reports chain id 56, ethereum is 1"


async def test_syncing_is_stale(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, payload=evm_batch(syncing={"currentBlock": "0x1", "highestBlock": "0x2"}))
    result = await run(session, config())
    assert result.outcome is Outcome.STALE and "syncing" in result.detail


@pytest.mark.parametrize(
    ("answer", "status", "outcome"),
    [
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "limit exceeded"}}, 200, Outcome.RATE_LIMITED),
        ([{"jsonrpc": "2.0", "id": 1, "error": {"code": 429, "message": "too many"}}], 200, Outcome.RATE_LIMITED),
        ({"error": "nope"}, 429, Outcome.RATE_LIMITED),
        ({"error": "nope"}, 401, Outcome.AUTH_ERROR),
        ({"error": "nope"}, 503, Outcome.SERVER_ERROR),
        ([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}], 200, Outcome.BAD_PAYLOAD),  # two answers missing
        ([{"jsonrpc": "2.0", "id": 1, "result": "1"}, {"id": 2, "result": {}}, {"id": 3, "result": False}], 200, Outcome.BAD_PAYLOAD),
    ],
)
async def test_failures_are_outcomes_never_raised(session: aiohttp.ClientSession, mocked: Any, answer: Any, status: int, outcome: Outcome) -> None:
    mocked.post(URL, payload=answer, status=status, repeat=True)
    result = await run(session, config())
    assert result.outcome is outcome, result.detail
    assert SECRET not in result.detail


async def test_garbage_body_is_bad_payload(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, body=b"\x00<html>502", status=200)
    result = await run(session, config())
    assert result.outcome is Outcome.BAD_PAYLOAD and "malformed JSON" in result.detail


async def test_timeout_and_connection_errors(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(URL, exception=TimeoutError())
    assert (await run(session, config())).outcome is Outcome.TIMEOUT
    mocked.post(URL, exception=aiohttp.ClientConnectionError(f"https://rpc.example.test/v3/{SECRET}"))
    result = await run(session, config())
    assert result.outcome is Outcome.CONNECTION_ERROR and SECRET not in result.detail


async def test_esplora_reads_blocks_and_the_genesis_hash(session: aiohttp.ClientSession, mocked: Any) -> None:
    genesis = "000000000019D6689C085AE165831E934FF763AE46A2A6C172B3F1B60A8CE26F"  # any case in the config
    cfg = config("esplora", genesis)
    mocked.get(re.compile(r".*/blocks$"), payload=[{"id": "ab", "height": 870_000, "timestamp": int(NOW) - 300}])
    mocked.get(re.compile(r".*/block-height/0$"), body=genesis.lower())
    chains = Chains()
    result = await run(session, cfg, chains=chains)
    assert result.outcome is Outcome.SUCCESS, result.detail
    assert chains.views(NOW)[0].head.block == 870_000  # type: ignore[union-attr]


async def test_solana_health_behind_is_syncing_and_a_skipped_slot_has_no_time(session: aiohttp.ClientSession, mocked: Any) -> None:
    cfg = config("solana", "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d")
    mocked.post(URL, payload=[{"id": 1, "result": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"}, {"id": 2, "result": 300_000_000}])
    mocked.post(URL, payload=[{"id": 1, "error": {"code": -32005, "message": "Node is behind by 42 slots"}}])
    mocked.post(URL, payload=[{"id": 1, "error": {"code": -32009, "message": "Slot 300000000 was skipped"}}])
    chains = Chains()
    result = await run(session, cfg, chains=chains)
    assert result.outcome is Outcome.STALE and "syncing" in result.detail
    head = chains.views(NOW)[0].head
    assert head is not None and (head.block, head.timestamp, head.syncing) == (300_000_000, None, True)


# ---------------------------------------------------------------- config


def test_defaults_follow_the_block_time_and_can_be_overridden() -> None:
    chain = config(max_lag_blocks=3).providers[0].endpoint("head").chain
    assert chain == ChainSpec("ethereum", chain.protocol, "1", 12.0, 3, 60.0, 120.0)  # type: ignore[union-attr]
    assert config().providers[0].endpoint("head2").chain.max_lag_blocks == 5  # type: ignore[union-attr]


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(yaml.safe_load(text), "f.yml", env={})
    return [line.removeprefix("f.yml: ") for line in err.value.errors]


BASE = "providers: [{name: p, category: rpc_nodes, base_url: 'https://a.test', endpoints: [%s]}]"


@pytest.mark.parametrize(
    ("endpoints", "error"),
    [
        ("{name: e, kind: chain_head}", "providers[p].endpoints[e].chain: required for kind chain_head: name, protocol, id and block_time"),
        (
            "{name: e, chain: {name: eth, protocol: evm, id: 1, block_time: 12s}}",
            "providers[p].endpoints[e].chain: only an endpoint of kind chain_head has a chain (this one is http)",
        ),
        ("{name: e, url: 'https://b.test'}", "providers[p].endpoints[e].url: only an endpoint of kind chain_head has its own url (this one is http)"),
        (
            "{name: e, kind: chain_head, chain: {name: eth, protocol: evm, id: abc, block_time: 12s}}",
            "providers[p].endpoints[e].chain.id: an EVM chain id is a decimal number (1 for Ethereum), got 'abc'",
        ),
        (
            "{name: e, kind: chain_head, chain: {name: eth, protocol: evm, id: 1, block_time: 12s}}, {name: f, kind: chain_head, chain: {name: eth, protocol: evm, id: 56, block_time: 12s}}",
            "providers[p].endpoints[f].chain.id: chain 'eth' has id '1' at p/e: endpoints of one chain must agree",
        ),
        (
            "{name: e, kind: chain_head, chain: {name: eth, protocol: tron, id: 1, block_time: 12s}}",
            "providers[p].endpoints[e].chain.protocol: invalid value 'tron' (one of: evm, solana, esplora)",
        ),
    ],
)
def test_config_errors_name_provider_and_field(endpoints: str, error: str) -> None:
    assert errors_of(BASE % endpoints) == [error]


def test_chain_ids_are_normalized_for_comparison() -> None:
    assert config(chain_id="01").providers[0].endpoint("head").chain.id == "1"  # type: ignore[union-attr]
    genesis = "000000000019D6689C085AE165831E934FF763AE46A2A6C172B3F1B60A8CE26F"
    assert config("esplora", genesis).providers[0].endpoint("head").chain.id == genesis.lower()  # type: ignore[union-attr]
