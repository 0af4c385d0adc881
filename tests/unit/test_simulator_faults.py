"""Every fault kind, `count` expiry and specificity."""

from __future__ import annotations

import asyncio
import gzip
import json
import struct
import time
import zlib

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from exporter.config import Config
from exporter.simulator import FaultSpec, Simulator, hostile
from tests.clock import SetClock

from .conftest import StartSim

TICKER = "/sim/binance/api/v3/ticker/24hr?symbol=BTCUSDT"
PING = "/sim/binance/api/v3/ping"
TIME = "/sim/binance/api/v3/time"
ETHERSCAN_GAS = "/sim/etherscan/v2/api?chainid=1&module=gastracker&action=gasoracle&apikey=k1"
RPC = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}


@pytest.fixture
async def sim(config: Config, start_sim: StartSim) -> Simulator:
    return await start_sim(config, seed=5, max_hang=5.0)


@pytest.fixture
async def client():  # type: ignore[no-untyped-def]
    # force_close: a disconnect fault must not be retried on a pooled connection.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as c:
        yield c


async def fetch(client: aiohttp.ClientSession, url: str, **kw) -> tuple[int, bytes, dict[str, str]]:  # type: ignore[no-untyped-def]
    async with client.get(url, **kw) as r:
        return r.status, await r.read(), dict(r.headers)


async def test_latency(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("binance", latency_ms=300))
    start = time.monotonic()
    status, _, _ = await fetch(client, sim.url + PING)
    assert status == 200 and time.monotonic() - start >= 0.28


@pytest.mark.parametrize(
    ("status", "check"),
    [
        (503, lambda d: d["code"] == -1121),
        (418, lambda d: d["code"] == -1003),
        (401, lambda d: d["code"] == -2015),
    ],
)
async def test_status_with_provider_error_body(sim: Simulator, client: aiohttp.ClientSession, status, check) -> None:  # type: ignore[no-untyped-def]
    sim.set_fault(FaultSpec("binance", status=status))
    got, body, headers = await fetch(client, sim.url + TICKER)
    assert got == status and check(json.loads(body))
    if status == 418:
        assert headers["Retry-After"] == "30"


async def test_hang_until_client_gives_up(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("binance", endpoint="ping", hang=True))
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await fetch(client, sim.url + PING, timeout=aiohttp.ClientTimeout(total=0.4))
    assert time.monotonic() - start < 2
    status, _, _ = await fetch(client, sim.url + TIME)  # other endpoints still answer
    assert status == 200


async def test_disconnect(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("binance", disconnect=True))
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(client, sim.url + PING)


async def test_rate_limit_429_with_retry_after_and_weight(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "binance", "rate_limit": {"retry_after": 30}}))
    status, body, headers = await fetch(client, sim.url + TICKER)
    assert status == 429 and headers["Retry-After"] == "30"
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 6000
    assert json.loads(body)["code"] == -1003


@pytest.mark.parametrize(
    ("url", "kind", "check"),
    [
        (ETHERSCAN_GAS, "rate_limit", lambda d: d["status"] == "0" and "Max rate limit reached" in d["result"]),
        (ETHERSCAN_GAS, "auth", lambda d: d["result"] == "Invalid API Key"),
        (ETHERSCAN_GAS, "generic", lambda d: d["status"] == "0" and d["message"] == "NOTOK"),
        ("/sim/okx/api/v5/market/ticker?instId=BTC-USDT", "rate_limit", lambda d: d["code"] == "50011"),
        ("/sim/bybit/v5/market/tickers?category=spot&symbol=BTCUSDT", "rate_limit", lambda d: d["retCode"] == 10006),
        ("/sim/cryptocompare/data/pricemultifull?fsyms=BTC&tsyms=USD", "rate_limit", lambda d: d["Response"] == "Error" and d["Type"] == 99),
        ("/sim/alternative_me/fng/?limit=1", "generic", lambda d: d["metadata"]["error"]),
    ],
)
async def test_body_error_is_http_200(sim: Simulator, client: aiohttp.ClientSession, url, kind, check) -> None:  # type: ignore[no-untyped-def]
    provider = url.split("/")[2]
    sim.set_fault(FaultSpec(provider, body_error=kind))
    status, body, _ = await fetch(client, sim.url + url)
    assert status == 200 and check(json.loads(body))


async def test_body_errors_match_registry_rules(sim: Simulator, config: Config, client: aiohttp.ClientSession) -> None:
    """The simulator's error bodies are what the shipped error rules are written for."""
    cases = [
        ("etherscan", "gas_oracle", ETHERSCAN_GAS, "rate_limit", "rate_limited"),
        ("etherscan", "gas_oracle", ETHERSCAN_GAS, "auth", "auth_error"),
        ("etherscan", "gas_oracle", ETHERSCAN_GAS, "generic", "bad_payload"),
        ("okx", "btc_ticker", "/sim/okx/api/v5/market/ticker?instId=BTC-USDT", "rate_limit", "rate_limited"),
        ("bybit", "btc_ticker", "/sim/bybit/v5/market/tickers?category=spot&symbol=BTCUSDT", "rate_limit", "rate_limited"),
        ("cryptocompare", "btc_price", "/sim/cryptocompare/data/pricemultifull?fsyms=BTC&tsyms=USD", "rate_limit", "rate_limited"),
        ("cryptocompare", "btc_price", "/sim/cryptocompare/data/pricemultifull?fsyms=BTC&tsyms=USD", "auth", "auth_error"),
        ("kraken", "btc_ticker", "/sim/kraken/0/public/Ticker?pair=XBTUSD", "rate_limit", "rate_limited"),
        ("coinmarketcap", "btc_quote", "/sim/coinmarketcap/v2/cryptocurrency/quotes/latest?symbol=BTC&convert=USD", "rate_limit", "rate_limited"),
        ("newsapi", "everything", "/sim/newsapi/v2/everything?q=bitcoin&sortBy=publishedAt&pageSize=1", "rate_limit", "rate_limited"),
    ]
    headers = {"X-CMC_PRO_API_KEY": "k", "X-Api-Key": "k"}
    for provider, endpoint, url, kind, outcome in cases:
        sim.set_fault(FaultSpec(provider, body_error=kind))
        _, body, _ = await fetch(client, sim.url + url, headers=headers)
        data = json.loads(body)
        matched = next((r.outcome.value for r in config.provider(provider).endpoint(endpoint).error_rules if r.when.search(data)), None)
        assert matched == outcome, (provider, kind, data)
    async with client.post(f"{sim.url}/sim/publicnode", json=RPC) as r:
        assert "error" not in await r.json()
    sim.set_fault(FaultSpec("publicnode", body_error="rate_limit"))
    async with client.post(f"{sim.url}/sim/publicnode", json=RPC) as r:
        assert r.status == 200 and (await r.json())["error"]["code"] == -32005


async def test_garbage_truncated_oversized(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("binance", endpoint="btc_ticker", garbage=True))
    _, body, _ = await fetch(client, sim.url + TICKER)
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    sim.set_fault(FaultSpec("binance", endpoint="btc_ticker", truncated=True))
    _, body, _ = await fetch(client, sim.url + TICKER)
    assert body.startswith(b"{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    sim.set_fault(FaultSpec("binance", endpoint="btc_ticker", oversized_bytes=2_000_000))
    _, body, headers = await fetch(client, sim.url + TICKER)
    assert len(body) == 2_000_000 and "lastPrice" in json.loads(body)
    # Streamed as generated: no Content-Length tells the client the size before it reads.
    assert "Content-Length" not in headers and headers["Transfer-Encoding"] == "chunked"
    sim.set_fault(FaultSpec("binance", endpoint="btc_ticker", oversized_bytes=2_000_000, truncated=True))
    _, body, _ = await fetch(client, sim.url + TICKER)
    assert len(body) == 1_000_000 and body.startswith(b"{")


async def test_stale_seconds_shifts_timestamps(config: Config, start_sim: StartSim, client: aiohttp.ClientSession) -> None:
    now = 1_750_000_050.0
    sim = await start_sim(config, seed=5, clock=SetClock(now))
    sim.set_fault(FaultSpec("binance", stale_seconds=3600))
    _, body, _ = await fetch(client, sim.url + TIME)
    server_time = json.loads(body)["serverTime"]
    assert 3590 < now - server_time / 1000 < 3610
    assert server_time == (now - 3600) * 1000
    sim.set_fault(FaultSpec("publicnode", stale_seconds=600))
    async with client.post(f"{sim.url}/sim/publicnode", json={**RPC, "method": "eth_getBlockByNumber", "params": ["latest", False]}) as r:
        ts = int((await r.json())["result"]["timestamp"], 16)
    assert now - ts >= 600
    assert now - 600 - ts < 12  # the last block (one every 12 s) before the stale time


async def test_count_expires(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "binance", "status": 503, "count": 2}))
    codes = [(await fetch(client, sim.url + PING))[0] for _ in range(3)]
    assert codes == [503, 503, 200]
    assert sim.faults.active() == []


async def test_specificity_endpoint_beats_provider_beats_star(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("*", status=500))
    sim.set_fault(FaultSpec("binance", status=502))
    sim.set_fault(FaultSpec("binance", endpoint="ping", status=504))
    assert (await fetch(client, sim.url + PING))[0] == 504
    assert (await fetch(client, sim.url + TIME))[0] == 502
    assert (await fetch(client, sim.url + "/sim/coingecko/api/v3/ping"))[0] == 500
    # Several faults at once for different targets; clearing one leaves the others.
    sim.clear_faults("binance", "ping")
    assert (await fetch(client, sim.url + PING))[0] == 502
    sim.clear_faults("binance")
    assert (await fetch(client, sim.url + PING))[0] == 500
    sim.clear_faults()
    assert (await fetch(client, sim.url + PING))[0] == 200


async def test_stop_ends_hanging_requests_quickly(config: Config) -> None:
    s = Simulator(config)
    arrived = asyncio.Event()

    @web.middleware
    async def note_arrival(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived.set()
        return await handler(request)  # runs on into the hang before anything else can

    s.app.middlewares.append(note_arrival)
    await s.start()
    s.set_fault(FaultSpec("binance", hang=True))
    async with aiohttp.ClientSession() as client:
        task = asyncio.create_task(fetch(client, s.url + PING))
        await arrived.wait()  # rather than a guess at how long the request takes to hang
        start = time.monotonic()
        await s.stop()
        assert time.monotonic() - start < 3
        with pytest.raises(aiohttp.ClientError):
            await task


# ---------------------------------------------------------------- hostile answers (issue 9)


async def test_gzip_bomb(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "binance", "endpoint": "ping", "gzip_bomb": True}))
    started = time.monotonic()
    async with client.get(sim.url + PING, auto_decompress=False) as r:
        body, headers = await r.read(), r.headers
    first = time.monotonic() - started
    assert headers["Content-Encoding"] == "gzip" and int(headers["Content-Length"]) == len(body)
    assert len(body) < 1024 * 1024  # under the exporter's default body cap on the wire...
    assert struct.unpack("<I", body[-4:])[0] == hostile.GZIP_BOMB_BYTES % 2**32  # ...1,000 MiB once inflated
    assert zlib.decompressobj(31).decompress(body[:4096], 65536) == bytes(65536)
    started = time.monotonic()
    async with client.get(sim.url + PING, auto_decompress=False) as r:
        assert await r.read() == body
    assert time.monotonic() - started < max(first, 0.2)  # built once, then kept


def test_gzip_bomb_is_valid_gzip_of_zeros() -> None:
    bomb = hostile.gzip_bomb(3 * 1024 * 1024)
    assert gzip.decompress(bomb) == bytes(3 * 1024 * 1024)  # CRC-32 and size checked
    with pytest.raises(ValueError, match="whole number of MiB"):
        hostile.gzip_bomb(1000)


@pytest.mark.parametrize(("value", "levels"), [(True, 100_000), (3, 3)])
async def test_deep_json(sim: Simulator, client: aiohttp.ClientSession, value: object, levels: int) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "binance", "deep_json": value}))
    status, body, headers = await fetch(client, sim.url + TIME)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == b"[" * levels + b"]" * levels


async def test_slow_body_sends_a_byte_a_second(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec("binance", endpoint="server_time", slow_body=True))
    started = time.monotonic()
    async with client.get(sim.url + TIME) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) > 10
        assert await r.content.readexactly(1) == b"{"
        assert time.monotonic() - started < 0.5
        await r.content.readexactly(1)
        assert 0.9 <= time.monotonic() - started < 1.8


@pytest.mark.parametrize(
    ("redirect", "status"),
    [("http://127.0.0.1:9", 302), ({"to": "https://moved.example.test/base/", "status": 301}, 301), ({"to": "http://127.0.0.1:9", "status": 308}, 308)],
)
async def test_redirect_keeps_path_and_query(sim: Simulator, client: aiohttp.ClientSession, redirect: object, status: int) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "etherscan", "redirect": redirect}))
    to = redirect if isinstance(redirect, str) else redirect["to"].rstrip("/")  # type: ignore[index]
    got, _, headers = await fetch(client, sim.url + ETHERSCAN_GAS, allow_redirects=False)
    assert got == status and headers["Location"] == to + ETHERSCAN_GAS


async def test_redirect_is_answered_before_the_key_is_checked(sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim.set_fault(FaultSpec.from_json({"provider": "etherscan", "redirect": "http://127.0.0.1:9", "invalid_keys": "all"}))
    got, _, _ = await fetch(client, sim.url + ETHERSCAN_GAS, allow_redirects=False)
    assert got == 302


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "binance", "latency": 5}, "latency"),
        ({"endpoint": "ping"}, "provider"),
        ({"provider": 3}, "provider"),
        ({"provider": "binance", "status": "503"}, "status"),
        ({"provider": "binance", "status": 99}, "status"),
        ({"provider": "binance", "hang": "yes"}, "hang"),
        ({"provider": "binance", "rate_limit": {"retry": 3}}, "rate_limit.retry"),
        ({"provider": "binance", "rate_limit": {"retry_after": "soon"}}, "rate_limit.retry_after"),
        ({"provider": "binance", "body_error": "oops"}, "body_error"),
        ({"provider": "binance", "oversized_bytes": -1}, "oversized_bytes"),
        ({"provider": "binance", "gzip_bomb": "yes"}, "gzip_bomb"),
        ({"provider": "binance", "slow_body": 1}, "slow_body"),
        ({"provider": "binance", "deep_json": 0}, "deep_json"),
        ({"provider": "binance", "deep_json": 2_000_000}, "deep_json"),
        ({"provider": "binance", "deep_json": "deep"}, "deep_json"),
        ({"provider": "binance", "redirect": 5}, "redirect"),
        ({"provider": "binance", "redirect": "ftp://x.test"}, "redirect.to"),
        ({"provider": "binance", "redirect": "http://x.test/?q=1"}, "redirect.to"),
        ({"provider": "binance", "redirect": {"to": "http://x.test", "status": 200}}, "redirect.status"),
        ({"provider": "binance", "redirect": {"to": "http://x.test", "status": 302.0}}, "redirect.status"),
        ({"provider": "binance", "redirect": {"to": "http://x.test", "code": 301}}, "redirect.code"),
        ({"provider": "binance", "redirect": {"status": 301}}, "redirect.to"),
        ({"provider": "binance", "invalid_keys": "some"}, "invalid_keys"),
        ({"provider": "binance", "invalid_keys": [1]}, "invalid_keys"),
        ({"provider": "binance", "quota_remaining": 1.5}, "quota_remaining"),
        ({"provider": "binance", "count": 0}, "count"),
        ({"provider": "binance", "count": True}, "count"),
        ([], "body"),
    ],
)
def test_fault_spec_validation_names_the_field(body, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=field) as err:
        FaultSpec.from_json(body)
    assert str(err.value).startswith(f"{field}:")


def test_fault_spec_round_trip_masks_keys() -> None:
    spec = FaultSpec.from_json({"provider": "etherscan", "endpoint": "gas_oracle", "invalid_keys": ["s3cret"], "count": 2, "rate_limit": {"retry_after": 20}})
    shown = spec.to_json()
    assert "s3cret" not in json.dumps(shown) and "s3cret" not in repr(spec)
    assert shown == {"provider": "etherscan", "endpoint": "gas_oracle", "rate_limit": {"retry_after": 20.0}, "invalid_keys": ["***"], "count": 2}
    spec = FaultSpec.from_json({"provider": "okx", "redirect": {"to": "http://127.0.0.1:9/", "status": 307}, "deep_json": 5})
    assert FaultSpec.from_json(spec.to_json()) == spec
