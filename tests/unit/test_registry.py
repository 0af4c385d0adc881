"""The shipped providers.yaml: contract names, coverage, and a cross-check against the
simulator so that the registry and the simulator's payloads cannot drift apart."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.classify import classify_response
from exporter.config import DEFAULT_FILE, AuthType, BodyFormat, Config, Endpoint, Provider, TimeUnit, load_config
from exporter.model import Category, Outcome, ProbeKind
from exporter.simulator import FaultSpec, RateLimitFault, Simulator, payloads, simulator_config

from .conftest import StartSim

REQUIRED = {
    # what the old backends monitored (DESIGN.md), the exchanges and RPC nodes it names
    "coingecko", "coinmarketcap", "cryptocompare", "binance", "etherscan", "bscscan", "tronscan",
    "cryptopanic", "newsapi", "alternative_me", "thegraph", "blockchair", "bybit", "okx",
    "publicnode", "infura", "alchemy",
    # what issue 13 names
    "coinpaprika", "coincap", "messari", "coinapi", "coinbase", "kraken", "kucoin", "gateio",
    "bitfinex", "bitstamp", "htx", "bitget", "mexc", "deribit", "polygonscan", "arbiscan",
    "mempool_space", "blockstream", "solscan", "subscan", "defillama", "dune", "goldrush", "moralis",
    "oneinch", "zerox", "coinmarketcal", "santiment", "lunarcrush", "pyth", "redstone", "dia",
}  # fmt: skip
CONTRACT_VALUES = {"btc_usd", "eth_usd", "gas_price_gwei", "fear_greed_index", "block_height"}
MIN_PROVIDERS, MIN_ENDPOINTS, MIN_PER_CATEGORY = 60, 150, 5


def _value_names(p: Provider) -> set[str]:
    return {v.name for e in p.endpoints for v in e.values}


def test_loads_without_env_with_warnings_only(config: Config) -> None:
    assert config.providers
    assert all("none of" in w or "budget" in w for w in config.warnings)
    assert not [w for w in config.warnings if "budget" in w], "the schedule must fit every budget"


def test_coverage(config: Config) -> None:
    names = {p.name for p in config.providers}
    assert len(names) >= MIN_PROVIDERS
    assert sum(len(p.endpoints) for p in config.providers) >= MIN_ENDPOINTS
    assert names >= REQUIRED, REQUIRED - names
    per_category = Counter(p.category for p in config.providers)
    assert set(per_category) == set(Category)
    assert min(per_category.values()) >= MIN_PER_CATEGORY, per_category
    # Chain heads (issue 11) are checked in tests/integration/test_chain_heads.py; the rest is plain HTTP.
    assert all(ep.kind in (ProbeKind.HTTP, ProbeKind.CHAIN_HEAD) for p in config.providers for ep in p.endpoints)


def test_contract_values(config: Config) -> None:
    market = [p.name for p in config.providers if p.category is Category.MARKET_DATA and "btc_usd" in _value_names(p)]
    assert len(market) >= 3
    for exchange in ("binance", "bybit", "okx"):
        assert "btc_usd" in _value_names(config.provider(exchange))
    assert "gas_price_gwei" in _value_names(config.provider("etherscan"))
    assert "fear_greed_index" in _value_names(config.provider("alternative_me"))
    for p in config.providers:
        if p.category is Category.RPC_NODES:
            assert "block_height" in _value_names(p), p.name
    every = set().union(*(_value_names(p) for p in config.providers))
    assert every >= CONTRACT_VALUES
    for p in config.providers:
        for ep in p.endpoints:
            for v in ep.values:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", v.name), v.name
                # PriceDivergence compares btc_usd across providers over 10 minutes: a
                # value probed less often would be an old price, reported as btc_usd_slow.
                if v.name == "btc_usd":
                    assert ep.interval <= 600, (p.name, ep.name)


def test_keys_come_from_env_only(config: Config) -> None:
    text = Path(DEFAULT_FILE).read_text()
    # Subgraph ids are public identifiers, not secrets.
    scrubbed = re.sub(r"subgraphs/id/\w+", "subgraphs/id/ID", text)
    # Chain ids (Solana's and Bitcoin's are genesis hashes) are public identifiers too.
    scrubbed = re.sub(r"protocol: (\w+), id: \w+", r"protocol: \1, id: ID", scrubbed)
    assert not re.search(r"\b[0-9a-fA-F]{32,}\b", scrubbed), "a hex key-looking literal"
    assert not re.search(r"\b(?=\w*\d)(?=\w*[A-Z])(?=\w*[a-z])\w{30,}\b", scrubbed), "a key-looking literal"
    assert not re.search(r"(?i)(apikey|api_key|auth_token|key)=\w", scrubbed)
    for p in config.providers:
        if p.auth.type is AuthType.PATH:
            assert "{key}" in p.base_url
        if p.auth.type is not AuthType.NONE:
            assert p.auth.env and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", e) for e in p.auth.env)
    assert config.provider("etherscan").auth.env == ("ETHERSCAN_API_KEY_1", "ETHERSCAN_API_KEY_2")
    assert "CMC_API_KEY" in config.provider("coinmarketcap").auth.env


def test_odd_status_codes_and_quota(config: Config) -> None:
    assert config.provider("binance").endpoint("btc_ticker").status_outcomes[418] is Outcome.RATE_LIMITED
    stats = config.provider("blockchair").endpoint("bitcoin_stats").status_outcomes
    assert stats[430] is Outcome.RATE_LIMITED and stats[402] is Outcome.RATE_LIMITED
    assert config.provider("infura").endpoint("block_number").status_outcomes[402] is Outcome.RATE_LIMITED
    (weight,) = config.provider("binance").quota_headers
    assert (weight.scope, weight.used, weight.limit_value, weight.window) == ("weight_1m", "X-MBX-USED-WEIGHT-1M", 6000, 60)
    for metered in ("coinmarketcap", "etherscan", "newsapi", "cryptopanic", "coingecko", "coinapi", "dune", "santiment", "coinglass"):
        assert config.provider(metered).budget is not None, metered


def test_keyed_metered_providers_are_probed_under_a_budget(config: Config) -> None:
    """A provider that meters a user's key gets a client-side budget: monitoring must
    never spend the quota the product needs. Path keys (RPC nodes, The Graph) meter
    in credits far above what a probe a minute costs; exchanges meter by IP weight."""
    for p in config.providers:
        if p.auth.type in (AuthType.QUERY, AuthType.HEADER) and not p.auth.optional:
            assert p.budget is not None, p.name
        if p.budget is not None:
            planned = sum(p.budget.per / ep.interval for ep in p.endpoints)
            assert planned <= p.budget.requests, p.name


def test_every_provider_names_its_source_and_confidence(config: Config) -> None:
    from tools.providers_md import read_provenance

    provenance = read_provenance(Path(DEFAULT_FILE).read_text())
    assert set(provenance) == {p.name for p in config.providers}
    for name, prov in provenance.items():
        assert prov.sources and prov.confidence in ("V", "P", "U"), name
        # Whatever is not confirmed in a source is said so.
        assert prov.confidence == "V" or prov.unconfirmed, name


# ---------------------------------------------------------------- cross-check


def _env_with_keys() -> dict[str, str]:
    text = Path(DEFAULT_FILE).read_text()
    names = set(re.findall(r"\b[A-Z][A-Z0-9_]*_(?:API_KEY(?:_\d)?|TOKEN)\b", text))
    return {n: f"sim-{n.lower()}" for n in names}


def request_for(p: Provider, ep: Endpoint) -> dict[str, Any]:
    """The request the exporter sends, with the first key in its configured place."""
    key = p.auth.keys[0].value if p.auth.keys else ""
    url = p.base_url + ep.path
    params, headers = dict(ep.params), dict(ep.headers)
    if p.auth.type is AuthType.QUERY:
        params[p.auth.name] = key
    elif p.auth.type is AuthType.HEADER:
        headers[p.auth.name] = p.auth.prefix + key
    elif p.auth.type is AuthType.PATH:
        url = url.replace("{key}", key)
    req: dict[str, Any] = {"method": ep.method.value, "url": url, "params": params, "headers": headers}
    if ep.json is not None:
        req["json"] = ep.json
    return req


def to_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value, 16)) if value.lower().startswith("0x") else float(value)
        except ValueError:
            return None
    return None


def to_timestamp(value: Any, unit: TimeUnit) -> float | None:
    if unit is TimeUnit.ISO:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if unit is TimeUnit.HEX_S:
        assert isinstance(value, str) and value.startswith("0x"), value
    number = to_float(value)
    assert number is not None, value
    if unit is TimeUnit.MS or (unit is TimeUnit.AUTO and number > 1e11):
        return number / 1000
    return number


def _classify() -> Any:
    """The exporter's own payload checker, when it is there (it is built alongside)."""
    try:
        from exporter import classify
    except ImportError:
        return None
    return classify if hasattr(classify, "check_payload") else None


def shipped_endpoints() -> list[tuple[str, str]]:
    """The http endpoints (chain_head ones speak several requests per probe: test_chain_heads.py)."""
    return [(p.name, e.name) for p in load_config(env={}).providers for e in p.endpoints if e.kind is ProbeKind.HTTP]


@pytest.fixture(scope="module")
def keyed_config() -> Config:
    return load_config(env=_env_with_keys())


@pytest.fixture
async def sim(keyed_config: Config, start_sim: StartSim) -> Simulator:
    return await start_sim(keyed_config, seed=3)


@pytest.mark.parametrize(("provider", "endpoint"), shipped_endpoints())
async def test_simulator_payload_passes_registry_checks(sim: Simulator, keyed_config: Config, provider: str, endpoint: str) -> None:
    p = simulator_config(keyed_config, sim.url).provider(provider)
    assert p.auth.type is AuthType.NONE or p.auth.keys, "every auth env var must get a key in this test"
    ep = p.endpoint(endpoint)
    async with aiohttp.ClientSession() as client, client.request(**request_for(p, ep)) as resp:
        assert resp.status in ep.expect_status, await resp.text()
        body = await resp.read()
    assert sim.request_count(provider, endpoint) == 1
    classify = _classify()
    if classify is not None:
        verdict = classify.check_payload(body, ep, time.time())
        assert verdict.outcome is Outcome.SUCCESS, verdict.detail
    if ep.format is BodyFormat.TEXT:
        for _value in ep.values:
            assert to_float(body.decode().strip()) is not None
        return
    data = json.loads(body)
    for rule in ep.error_rules:
        if rule.outcome is Outcome.SUCCESS:
            continue
        assert rule.when.search(data) in (None, False, "", [], {}), f"error rule matched: {rule.when.source}"
    for assertion in ep.assertions:
        assert assertion.search(data) not in (None, False, "", [], {}), f"assertion failed: {assertion.source}"
    for value in ep.values:
        number = to_float(value.path.search(data))
        assert number is not None, f"value {value.name} at {value.path.source}"
        if value.name in ("btc_usd", "btc_usd_slow"):
            assert 80_000 < number * value.scale < 110_000
        if value.name == "eth_usd":
            assert 2_500 < number * value.scale < 4_000
        if value.name == "gas_price_gwei":
            assert 0 < number * value.scale < 500
        if value.name == "fear_greed_index":
            assert 0 <= number <= 100
    if ep.freshness is not None:
        ts = to_timestamp(ep.freshness.path.search(data), ep.freshness.unit)
        assert ts is not None
        age = time.time() - ts
        assert -5 < age <= ep.freshness.max_age, f"age {age:.0f}s at {ep.freshness.path.source}"


async def test_stale_fault_makes_every_freshness_endpoint_stale(sim: Simulator, keyed_config: Config) -> None:
    from exporter.simulator import FaultSpec

    sim.set_fault(FaultSpec("*", stale_seconds=3 * 86400))
    cfg = simulator_config(keyed_config, sim.url)
    async with aiohttp.ClientSession() as client:
        for p in cfg.providers:
            for ep in p.endpoints:
                if ep.freshness is None or ep.kind is not ProbeKind.HTTP:
                    continue
                async with client.request(**request_for(p, ep)) as resp:
                    data = await resp.json(content_type=None)
                ts = to_timestamp(ep.freshness.path.search(data), ep.freshness.unit)
                assert ts is not None and time.time() - ts > ep.freshness.max_age, (p.name, ep.name)


# ---------------------------------------------------------------- error bodies


def test_every_endpoint_has_its_providers_payloads_and_error_bodies(config: Config) -> None:
    """No endpoint falls back to the generic payload or error body, and no generator is
    left behind for an endpoint the registry no longer has."""
    shipped = {(p.name, e.name) for p in config.providers for e in p.endpoints if e.kind is ProbeKind.HTTP}
    for provider, endpoint in shipped:
        assert (provider, endpoint) in payloads.PAYLOADS or (provider, "*") in payloads.PAYLOADS, (provider, endpoint)
    providers = {p for p, _ in shipped}
    assert {p for p, e in payloads.PAYLOADS if e == "*" or (p, e) in shipped} == {p for p, _ in payloads.PAYLOADS}
    assert {(p, e) for p, e in payloads.PAYLOADS if e != "*"} <= shipped
    assert set(payloads.ERROR_STYLES) == providers
    assert set(payloads.AUTH_STATUS) <= providers


async def _answer(sim: Simulator, p: Provider, ep: Endpoint, fault: FaultSpec | None) -> tuple[int, bytes]:
    sim.clear_faults()
    if fault is not None:
        sim.set_fault(fault)
    async with aiohttp.ClientSession() as client, client.request(**request_for(p, ep)) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize(("provider", "endpoint"), shipped_endpoints())
async def test_provider_error_bodies_are_classified(sim: Simulator, keyed_config: Config, provider: str, endpoint: str) -> None:
    """Each endpoint with its provider's own error bodies, as the provider sends them,
    ends in the classified outcome, never `success`."""
    p = simulator_config(keyed_config, sim.url).provider(provider)
    ep = p.endpoint(endpoint)

    def verdict(status: int, body: bytes) -> Outcome:
        return classify_response(status, body, ep, time.time()).outcome

    # A 429 with the provider's rate-limit body.
    status, body = await _answer(sim, p, ep, FaultSpec(provider, rate_limit=RateLimitFault(retry_after=5.0)))
    assert status == 429 and verdict(status, body) is Outcome.RATE_LIMITED, body
    # The provider's own codes for a limit or a ban (Binance 418, Blockchair 402/430...).
    for code, mapped in ep.status_outcomes.items():
        if mapped is Outcome.RATE_LIMITED:
            status, body = await _answer(sim, p, ep, FaultSpec(provider, status=code))
            assert verdict(status, body) is Outcome.RATE_LIMITED, (code, body)
    # A rejected key, with the status the provider answers it with (200 for Etherscan).
    if p.auth.type is not AuthType.NONE:
        status, body = await _answer(sim, p, ep, FaultSpec(provider, invalid_keys="all"))
        assert status == payloads.AUTH_STATUS.get(provider, 401)
        assert verdict(status, body) is Outcome.AUTH_ERROR, body
    # Errors in an HTTP 200 body, for the endpoints that read them.
    if ep.error_rules:
        status, body = await _answer(sim, p, ep, FaultSpec(provider, body_error="rate_limit"))
        assert status == 200 and verdict(status, body) is Outcome.RATE_LIMITED, body
        status, body = await _answer(sim, p, ep, FaultSpec(provider, body_error="generic"))
        assert verdict(status, body) not in (Outcome.SUCCESS, Outcome.RATE_LIMITED), body
        if payloads.AUTH_STATUS.get(provider) == 200:
            status, body = await _answer(sim, p, ep, FaultSpec(provider, body_error="auth"))
            assert verdict(status, body) is Outcome.AUTH_ERROR, body
        else:
            status, body = await _answer(sim, p, ep, FaultSpec(provider, body_error="auth"))
            assert verdict(status, body) is not Outcome.SUCCESS, body
