"""Plausible payloads of real providers, one small function per provider endpoint.

Every generator takes a `Ctx` and returns a JSON-able value (or a `str` for plain-text
endpoints). Field names and shapes follow docs/providers-reference: the shipped
providers.yaml must classify every one of them as `success` (tests/unit/test_registry.py
checks it). `ctx.now` is already shifted into the past by a `stale_seconds` fault, so
every timestamp derived from it goes stale together.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# ---------------------------------------------------------------- market model

BTC_START = 95_000.0
BTC_FLOOR, BTC_CEIL = 88_000.0, 102_000.0
ETH_PER_BTC = 0.0345
# (unix seconds, height) anchors and block times: heights grow with the wall clock.
CHAINS: dict[str, tuple[float, int, float]] = {
    "eth": (1_735_689_600.0, 21_525_000, 12.0),  # 2025-01-01
    "bsc": (1_735_689_600.0, 45_200_000, 3.0),
    "btc": (1_735_689_600.0, 877_250, 600.0),
    "tron": (1_735_689_600.0, 68_300_000, 3.0),
    "polygon": (1_735_689_600.0, 66_100_000, 2.0),
    "arbitrum": (1_735_689_600.0, 290_000_000, 0.25),
    "sol": (1_735_689_600.0, 311_000_000, 0.4),  # slots
    "dot": (1_735_689_600.0, 24_000_000, 6.0),
}
# Solana block heights trail slots by the skipped slots since genesis.
SOL_SKIPPED_SLOTS = 22_400_000
# EVM chains by Etherscan V2 chainid, with their eth_chainId answer.
EVM_CHAIN_IDS: dict[str, tuple[str, str]] = {"1": ("eth", "0x1"), "56": ("bsc", "0x38"), "137": ("polygon", "0x89"), "42161": ("arbitrum", "0xa4b1")}


class Market:
    """A BTC reference price doing a bounded random walk, one step per second of real
    time; every provider quotes it within a small fixed basis, so prices agree across
    providers to well within 0.2 %."""

    def __init__(self, rng: random.Random | None = None, start: float = BTC_START) -> None:
        self.rng = rng or random.Random()
        self._price = start
        self._last = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        steps = int(now - self._last)
        if steps <= 0:
            return
        self._last += steps
        # Per-second volatility of ~0.02 %, aggregated for the elapsed steps.
        drift = self.rng.gauss(0.0, 0.0002 * math.sqrt(min(steps, 3600)))
        self._price = min(BTC_CEIL, max(BTC_FLOOR, self._price * (1 + drift)))

    def btc_usd(self, provider: str = "") -> float:
        self._advance()
        return round(self._price * (1 + _basis(provider)), 2)

    def eth_usd(self, provider: str = "") -> float:
        return round(self.btc_usd(provider) * ETH_PER_BTC, 2)

    def gas_gwei(self) -> float:
        return round(self.rng.uniform(0.4, 12.0), 3)


class FrozenMarket(Market):
    """A market whose price stopped where the live one stood: what a stuck cache
    upstream serves while its timestamps keep advancing (the `frozen` fault)."""

    def __init__(self, live: Market) -> None:
        live._advance()
        super().__init__(live.rng, live._price)

    def _advance(self) -> None:
        return None


def _basis(provider: str) -> float:
    """A stable per-provider offset within +-0.05 %."""
    digest = hashlib.sha256(provider.encode()).digest()
    return (digest[0] / 255.0 - 0.5) * 0.001


def height(chain: str, now: float) -> int:
    t0, h0, block_time = CHAINS[chain]
    return h0 + int((now - t0) // block_time)


def block_time(chain: str, now: float) -> int:
    """Timestamp of the latest block at `now`."""
    t0, _, bt = CHAINS[chain]
    return int(t0 + ((now - t0) // bt) * bt)


def iso(ts: float, ms: bool = True) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{int(dt.microsecond / 1000):03d}Z" if ms else "Z")


def iso_ns(ts: float) -> str:
    """ISO-8601 with nanoseconds, as Go services write it (BlockCypher, DIA)."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9) % 1_000_000_000
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def ms(ts: float) -> int:
    return int(ts * 1000)


def fake_hash(*parts: Any, size: int = 32) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[: size * 2]


# ---------------------------------------------------------------- context


@dataclass
class Ctx:
    provider: str
    endpoint: str
    now: float  # wall clock, minus any stale_seconds fault
    market: Market
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # the parsed JSON request body, if any
    stale: float = 0.0
    # A `maintenance` fault: (scheduled | ongoing | over, when the fault was first seen);
    # status generators announce a window relative to that moment.
    maintenance: tuple[str, float] | None = None

    @property
    def rng(self) -> random.Random:
        return self.market.rng

    def price(self) -> float:
        return self.market.btc_usd(self.provider)

    def eth(self) -> float:
        return self.market.eth_usd(self.provider)

    def price_of(self, symbol: str) -> float:
        """BTC or ETH, from a symbol such as BTCUSDT, ETH-USD, tETHUSD or eth_usd."""
        return self.eth() if "ETH" in symbol.upper() else self.price()

    @property
    def rpc_id(self) -> Any:
        return self.body.get("id", 1) if isinstance(self.body, dict) else 1


Generator = Callable[[Ctx], Any]

# ---------------------------------------------------------------- market_data


def coingecko_ping(ctx: Ctx) -> Any:
    return {"gecko_says": "(V3) To the Moon!"}


def coingecko_price(ctx: Ctx) -> Any:
    return {"bitcoin": {"usd": ctx.price(), "last_updated_at": int(ctx.now) - ctx.rng.randint(5, 40)}}


def _cmc_status(ctx: Ctx, credits: int = 1) -> dict[str, Any]:
    return {
        "timestamp": iso(ctx.now),
        "error_code": 0,
        "error_message": None,
        "elapsed": ctx.rng.randint(5, 40),
        "credit_count": credits,
        "notice": None,
    }


def cmc_key_info(ctx: Ctx) -> Any:
    used_month = 2_000 + int(ctx.now // 600) % 6_000
    made_minute = ctx.rng.randint(0, 5)
    return {
        "status": _cmc_status(ctx, 0),
        "data": {
            "plan": {
                "credit_limit_monthly": 10_000,
                "credit_limit_monthly_reset": "In 12 days, 3 hours, 10 minutes",
                "credit_limit_monthly_reset_timestamp": iso(ctx.now + 12 * 86400),
                "rate_limit_minute": 30,
            },
            "usage": {
                "current_minute": {"requests_made": made_minute, "requests_left": 30 - made_minute},
                "current_day": {"credits_used": used_month % 330},
                "current_month": {"credits_used": used_month, "credits_left": 10_000 - used_month},
            },
        },
    }


def cmc_quote(ctx: Ctx) -> Any:
    price = ctx.price()
    updated = iso(ctx.now - ctx.rng.randint(10, 60))
    return {
        "status": _cmc_status(ctx),
        "data": {
            "BTC": [
                {
                    "id": 1,
                    "name": "Bitcoin",
                    "symbol": "BTC",
                    "slug": "bitcoin",
                    "cmc_rank": 1,
                    "last_updated": updated,
                    "quote": {
                        "USD": {
                            "price": price,
                            "volume_24h": 3.1e10,
                            "percent_change_1h": 0.12,
                            "percent_change_24h": 1.2,
                            "market_cap": round(price * 19_800_000, 2),
                            "last_updated": updated,
                        }
                    },
                }
            ]
        },
    }


def cmc_fear_greed(ctx: Ctx) -> Any:
    value = _fear_greed_value(ctx.now)
    return {
        "data": {
            "value": value,
            "value_classification": _fear_greed_class(value),
            "update_time": iso(ctx.now - ctx.rng.randint(60, 900)),
        },
        "status": _cmc_status(ctx),
    }


def cryptocompare_rate_limit(ctx: Ctx) -> Any:
    made = {"second": 1, "minute": ctx.rng.randint(1, 20), "hour": ctx.rng.randint(20, 200), "day": 800, "month": 12_000}
    maximum = {"second": 20, "minute": 300, "hour": 3000, "day": 7500, "month": 50_000}
    return {
        "Response": "Success",
        "Message": "",
        "HasWarning": False,
        "Type": 100,
        "RateLimit": {},
        "Data": {"calls_made": made, "calls_left": {k: maximum[k] - v for k, v in made.items()}},
    }


def cryptocompare_pricemultifull(ctx: Ctx) -> Any:
    price = ctx.price()
    last = int(ctx.now) - ctx.rng.randint(1, 20)
    raw = {
        "TYPE": "5",
        "MARKET": "CCCAGG",
        "FROMSYMBOL": "BTC",
        "TOSYMBOL": "USD",
        "FLAGS": "2049",
        "PRICE": price,
        "LASTUPDATE": last,
        "MEDIAN": price,
        "LASTVOLUME": 0.0012,
        "OPEN24HOUR": round(price * 0.99, 2),
        "CHANGEPCT24HOUR": 1.01,
        "MKTCAP": round(price * 19_800_000, 2),
    }
    return {"RAW": {"BTC": {"USD": raw}}, "DISPLAY": {"BTC": {"USD": {"PRICE": f"$ {price:,.2f}", "LASTUPDATE": "Just now"}}}}


def coinpaprika_global(ctx: Ctx) -> Any:
    return {
        "market_cap_usd": 3_350_000_000_000,
        "volume_24h_usd": 120_000_000_000,
        "bitcoin_dominance_percentage": 57.3,
        "cryptocurrencies_number": 11_245,
        "market_cap_ath_value": 3_900_000_000_000,
        "last_updated": int(ctx.now) - 60,
    }


def defillama_price(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_price"
    key = "coingecko:ethereum" if eth else "coingecko:bitcoin"
    return {
        "coins": {
            key: {
                "price": ctx.eth() if eth else ctx.price(),
                "symbol": "ETH" if eth else "BTC",
                "timestamp": int(ctx.now) - ctx.rng.randint(5, 120),
                "confidence": 0.99,
            }
        }
    }


# ---------------------------------------------------------------- exchanges


def binance_ping(ctx: Ctx) -> Any:
    return {}


def binance_time(ctx: Ctx) -> Any:
    return {"serverTime": ms(ctx.now)}


def binance_ticker_24hr(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("symbol", "BTCUSDT"))
    close = ms(ctx.now) - ctx.rng.randint(0, 500)
    return {
        "symbol": ctx.query.get("symbol", "BTCUSDT"),
        "priceChange": f"{price * 0.012:.8f}",
        "priceChangePercent": "1.210",
        "weightedAvgPrice": f"{price * 0.998:.8f}",
        "lastPrice": f"{price:.8f}",
        "lastQty": "0.00120000",
        "bidPrice": f"{price - 0.01:.8f}",
        "askPrice": f"{price:.8f}",
        "openPrice": f"{price * 0.988:.8f}",
        "highPrice": f"{price * 1.015:.8f}",
        "lowPrice": f"{price * 0.982:.8f}",
        "volume": "21234.50000000",
        "quoteVolume": f"{21234.5 * price:.8f}",
        "openTime": close - 86_400_000,
        "closeTime": close,
        "firstId": 4_500_000_000,
        "lastId": 4_501_234_567,
        "count": 1_234_567,
    }


def _bybit_envelope(ctx: Ctx, result: Any) -> Any:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": ms(ctx.now)}


def bybit_time(ctx: Ctx) -> Any:
    return _bybit_envelope(ctx, {"timeSecond": str(int(ctx.now)), "timeNano": str(int(ctx.now * 1e9))})


def bybit_tickers(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("symbol", "BTCUSDT"))
    item = {
        "symbol": ctx.query.get("symbol", "BTCUSDT"),
        "bid1Price": f"{price - 0.1:.2f}",
        "bid1Size": "0.512",
        "ask1Price": f"{price:.2f}",
        "ask1Size": "0.33",
        "lastPrice": f"{price:.2f}",
        "prevPrice24h": f"{price * 0.988:.2f}",
        "price24hPcnt": "0.0121",
        "highPrice24h": f"{price * 1.015:.2f}",
        "lowPrice24h": f"{price * 0.982:.2f}",
        "turnover24h": f"{12345.6 * price:.4f}",
        "volume24h": "12345.6",
    }
    return _bybit_envelope(ctx, {"category": ctx.query.get("category", "spot"), "list": [item]})


def okx_time(ctx: Ctx) -> Any:
    return {"code": "0", "msg": "", "data": [{"ts": str(ms(ctx.now))}]}


def okx_ticker(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("instId", "BTC-USDT"))
    return {
        "code": "0",
        "msg": "",
        "data": [
            {
                "instType": "SPOT",
                "instId": ctx.query.get("instId", "BTC-USDT"),
                "last": f"{price:.1f}",
                "lastSz": "0.0012",
                "askPx": f"{price + 0.1:.1f}",
                "askSz": "0.4",
                "bidPx": f"{price:.1f}",
                "bidSz": "1.2",
                "open24h": f"{price * 0.988:.1f}",
                "high24h": f"{price * 1.015:.1f}",
                "low24h": f"{price * 0.982:.1f}",
                "vol24h": "9876.5",
                "ts": str(ms(ctx.now) - ctx.rng.randint(0, 800)),
            }
        ],
    }


# ---- status sources (issue 11): maintenance scheduled, ongoing or over on command ----
# The window each mode announces, relative to the moment the fault was first seen:
# scheduled in an hour, ongoing since 5 minutes for another hour, over 5 minutes ago.
MAINTENANCE_WINDOWS: dict[str, tuple[float, float]] = {"scheduled": (3600.0, 7200.0), "ongoing": (-300.0, 3600.0), "over": (-3900.0, -300.0)}


def maintenance_window(ctx: Ctx) -> tuple[str, float, float] | None:
    """(mode, start, end) of the announced window, or None without a maintenance fault."""
    if ctx.maintenance is None:
        return None
    mode, anchor = ctx.maintenance
    begin, end = MAINTENANCE_WINDOWS[mode]
    return mode, anchor + begin, anchor + end


def binance_system_status(ctx: Ctx) -> Any:
    # Binance has no announced windows here: 1 only while it is in maintenance.
    window = maintenance_window(ctx)
    if window is not None and window[0] == "ongoing":
        return {"status": 1, "msg": "system_maintenance"}
    return {"status": 0, "msg": "normal"}


def kraken_system_status(ctx: Ctx) -> Any:
    window = maintenance_window(ctx)
    status = "maintenance" if window is not None and window[0] == "ongoing" else "online"
    return {"error": [], "result": {"status": status, "timestamp": iso(ctx.now, ms=False)}}


_WINDOW_STATES = {"scheduled": "scheduled", "ongoing": "ongoing", "over": "completed"}


def _window_item(ctx: Ctx) -> list[dict[str, Any]]:
    window = maintenance_window(ctx)
    if window is None:
        return []
    mode, start, end = window
    return [
        {
            "title": "Spot system upgrade",
            "state": _WINDOW_STATES[mode],
            "begin": str(ms(start)),
            "end": str(ms(end)),
            "href": "",
            "serviceType": "5",
            "system": "unified",
            "scheDesc": "",
        }
    ]


def okx_system_status(ctx: Ctx) -> Any:
    # OKX lists scheduled, ongoing and pre_open windows by default; completed ones only on request.
    items = [i for i in _window_item(ctx) if i["state"] != "completed"]
    return {"code": "0", "msg": "", "data": items}


def statuspage_summary(ctx: Ctx) -> Any:
    window = maintenance_window(ctx)
    maintenances: list[dict[str, Any]] = []
    component = "operational"
    if window is not None and window[0] != "over":  # summary.json lists upcoming and active ones only
        mode, start, end = window
        maintenances.append(
            {
                "id": "sim0maint0001",
                "name": "Scheduled database maintenance",
                "status": "in_progress" if mode == "ongoing" else "scheduled",
                "impact": "maintenance",
                "scheduled_for": iso(start),
                "scheduled_until": iso(end),
                "shortlink": "https://stspg.io/sim",
            }
        )
        component = "under_maintenance" if mode == "ongoing" else component
    return {
        "page": {"id": "sim0page", "name": ctx.provider, "url": f"https://status.{ctx.provider}.example", "updated_at": iso(ctx.now)},
        "status": {"indicator": "maintenance" if component == "under_maintenance" else "none", "description": "All Systems Operational"},
        "components": [{"id": "sim0comp", "name": "API", "status": component, "position": 1, "only_show_if_degraded": False}],
        "incidents": [],
        "scheduled_maintenances": maintenances,
    }


# ---- end status sources ----


def kraken_ticker(ctx: Ctx) -> Any:
    pair = ctx.query.get("pair", "XBTUSD")
    price = ctx.price_of(pair)
    p = f"{price:.5f}"
    # Kraken answers with its own pair names: XXBTZUSD, XETHZUSD.
    name = "XETHZUSD" if "ETH" in pair else "XXBTZUSD"
    return {
        "error": [],
        "result": {
            name: {
                "a": [f"{price + 0.1:.5f}", "1", "1.000"],
                "b": [p, "2", "2.000"],
                "c": [p, "0.00100000"],
                "v": ["1234.5", "2345.6"],
                "p": [p, p],
                "t": [21_000, 42_000],
                "l": [f"{price * 0.982:.5f}", f"{price * 0.982:.5f}"],
                "h": [f"{price * 1.015:.5f}", f"{price * 1.015:.5f}"],
                "o": f"{price * 0.988:.5f}",
            }
        },
    }


# ---------------------------------------------------------------- JSON-RPC (EVM)


def _chain_of(ctx: Ctx) -> str:
    if ctx.query.get("chainid") in EVM_CHAIN_IDS:
        return EVM_CHAIN_IDS[ctx.query["chainid"]][0]
    return "bsc" if ctx.provider == "bscscan" else "eth"


def _chain_id(chain: str) -> str:
    return next((hex_id for name, hex_id in EVM_CHAIN_IDS.values() if name == chain), "0x1")


def evm_block(chain: str, ctx: Ctx) -> dict[str, Any]:
    h = height(chain, ctx.now)
    return {
        "number": hex(h),
        "hash": "0x" + fake_hash(chain, h),
        "parentHash": "0x" + fake_hash(chain, h - 1),
        "timestamp": hex(block_time(chain, ctx.now)),
        "miner": "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5",
        "gasLimit": hex(36_000_000),
        "gasUsed": hex(ctx.rng.randint(8_000_000, 30_000_000)),
        "baseFeePerGas": hex(int(ctx.market.gas_gwei() * 1e9)),
        "size": hex(ctx.rng.randint(40_000, 200_000)),
        "transactions": [],
        "uncles": [],
    }


def evm_result(method: str, ctx: Ctx) -> tuple[bool, Any]:
    """(True, result) for a known method, (False, error) for an unknown one."""
    chain = _chain_of(ctx)
    if method == "eth_blockNumber":
        return True, hex(height(chain, ctx.now))
    if method == "eth_getBlockByNumber":
        return True, evm_block(chain, ctx)
    if method == "eth_chainId":
        return True, _chain_id(chain)
    if method == "net_version":
        return True, str(int(_chain_id(chain), 16))
    if method == "eth_gasPrice":
        return True, hex(int(ctx.market.gas_gwei() * 1e9))
    if method == "eth_syncing":
        return True, False
    if method == "web3_clientVersion":
        return True, "Geth/v1.14.12-stable/linux-amd64/go1.23.4"
    return False, {"code": -32601, "message": f"the method {method} does not exist/is not available"}


def jsonrpc(ctx: Ctx) -> Any:
    method = ctx.body.get("method") if isinstance(ctx.body, dict) else None
    ok, value = evm_result(str(method), ctx)
    key = "result" if ok else "error"
    return {"jsonrpc": "2.0", "id": ctx.rpc_id, key: value}


# ---------------------------------------------------------------- explorers


def etherscan_api(ctx: Ctx) -> Any:
    """Etherscan V2 (and BscScan through it): one URL, dispatched on module/action."""
    module, action = ctx.query.get("module"), ctx.query.get("action")
    chain = _chain_of(ctx)
    if module == "proxy" and action:
        ok, value = evm_result(action, ctx)
        if ok:
            return {"jsonrpc": "2.0", "id": 83, "result": value}
    if module == "gastracker" and action == "gasoracle":
        base = ctx.market.gas_gwei() if chain == "eth" else round(ctx.rng.uniform(0.05, 1.0), 3)
        return {
            "status": "1",
            "message": "OK",
            "result": {
                "LastBlock": str(height(chain, ctx.now)),
                "SafeGasPrice": f"{base:.3f}",
                "ProposeGasPrice": f"{base * 1.05:.3f}",
                "FastGasPrice": f"{base * 1.2:.3f}",
                "suggestBaseFee": f"{base * 0.95:.6f}",
                "gasUsedRatio": "0.41,0.62,0.38,0.55,0.49",
            },
        }
    if module == "stats" and action == "ethprice":
        ts = str(int(ctx.now) - ctx.rng.randint(5, 60))
        eth = ctx.market.eth_usd(ctx.provider)
        return {
            "status": "1",
            "message": "OK",
            "result": {"ethbtc": f"{ETH_PER_BTC:.5f}", "ethbtc_timestamp": ts, "ethusd": f"{eth:.2f}", "ethusd_timestamp": ts},
        }
    return {"status": "0", "message": "NOTOK", "result": "Error! Missing Or invalid Action name"}


def tronscan_block(ctx: Ctx) -> Any:
    h = height("tron", ctx.now)
    return {
        "total": 1,
        "rangeTotal": h,
        "data": [
            {
                "number": h,
                "hash": fake_hash("tron", h),
                "size": ctx.rng.randint(20_000, 90_000),
                "timestamp": block_time("tron", ctx.now) * 1000,
                "txTrieRoot": "",
                "parentHash": fake_hash("tron", h - 1),
                "witnessId": 0,
                "witnessAddress": "TLyqzVGLV1srkB7dToTAEqgDSfPtXRJZYH",
                "nrOfTrx": ctx.rng.randint(100, 400),
                "confirmed": False,
            }
        ],
    }


def blockchair_stats(ctx: Ctx) -> Any:
    """/bitcoin/stats and /ethereum/stats; timestamps are UTC "YYYY-MM-DD hh:ii:ss"."""
    eth = ctx.endpoint == "ethereum_stats"
    chain = "eth" if eth else "btc"
    price = ctx.eth() if eth else ctx.price()
    h = height(chain, ctx.now)
    # Blockchair serves its stats from a cache of about a minute.
    best_ts = block_time(chain, ctx.now) - (ctx.rng.randint(0, 4) * 12 if eth else 0)
    best = datetime.fromtimestamp(best_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    data: dict[str, Any] = {
        "blocks": h + 1,
        "transactions": 2_700_000_000 if eth else 1_150_000_000,
        "best_block_height": h,
        "best_block_hash": ("0x" + fake_hash(chain, h)) if eth else ("00000000000000000000" + fake_hash(chain, h, size=22)),
        "best_block_time": best,
        "mempool_transactions": ctx.rng.randint(5_000, 80_000),
        "market_price_usd": price,
        "market_price_btc": ETH_PER_BTC if eth else 1,
        "market_price_usd_change_24h_percentage": 1.21,
        "market_cap_usd": int(price * (120_000_000 if eth else 19_800_000)),
    }
    if eth:
        data["mempool_median_gas_price"] = int(ctx.market.gas_gwei() * 1e9)
    else:
        data["suggested_transaction_fee_per_byte_sat"] = ctx.rng.randint(2, 30)
    return {
        "data": data,
        "context": {
            "code": 200,
            "source": "A",
            "state": h,
            "market_price_usd": price,
            "cache": {"live": True, "duration": 60, "since": best, "until": best, "time": None},
            "api": {"version": "2.0.95", "documentation": "https://blockchair.com/api/docs", "notice": None},
            "servers": "API4,BTC0",
            "time": round(ctx.rng.uniform(0.001, 0.05), 6),
            "render_time": 0.004,
            "full_time": 0.01,
            "request_cost": 1,
        },
    }


def mempool_tip_height(ctx: Ctx) -> Any:
    return str(height("btc", ctx.now))


def mempool_blocks(ctx: Ctx) -> Any:
    h, ts = height("btc", ctx.now), block_time("btc", ctx.now)
    return [
        {
            "id": "00000000000000000000" + fake_hash("btc", h - i, size=22),
            "height": h - i,
            "version": 536_870_912,
            "timestamp": ts - 600 * i,
            "tx_count": 3_000 + 13 * i,
            "size": 1_600_000,
            "weight": 3_993_000,
            "difficulty": 1.1e14,
        }
        for i in range(10)
    ]


def mempool_fees(ctx: Ctx) -> Any:
    fastest = ctx.rng.randint(3, 40)
    return {
        "fastestFee": fastest,
        "halfHourFee": max(1, fastest - 2),
        "hourFee": max(1, fastest - 4),
        "economyFee": max(1, fastest // 3),
        "minimumFee": 1,
    }


# ---------------------------------------------------------------- news, sentiment, onchain

_TITLES = (
    "Bitcoin holds near ${price:,.0f} as ETF inflows continue",
    "Analysts eye ${price:,.0f} resistance as bitcoin volatility cools",
    "Miners move coins as BTC trades around ${price:,.0f}",
)


def cryptopanic_posts(ctx: Ctx) -> Any:
    price = ctx.price()
    results = []
    for i in range(3):
        published = iso(ctx.now - ctx.rng.randint(60, 1800) - 1800 * i, ms=False)
        slug = f"bitcoin-news-{int(ctx.now) // 600 - i}"
        results.append(
            {
                "kind": "news",
                "domain": "coindesk.com",
                "source": {"title": "CoinDesk", "region": "en", "domain": "coindesk.com", "path": None},
                "title": _TITLES[i].format(price=price),
                "published_at": published,
                "created_at": published,
                "slug": slug,
                "id": 20_000_000 + int(ctx.now) // 600 - i,
                "url": f"https://cryptopanic.com/news/{slug}/",
                "currencies": [{"code": "BTC", "title": "Bitcoin", "slug": "bitcoin", "url": "https://cryptopanic.com/news/bitcoin/"}],
                "votes": {
                    "negative": 0,
                    "positive": ctx.rng.randint(0, 9),
                    "important": 0,
                    "liked": 1,
                    "disliked": 0,
                    "lol": 0,
                    "toxic": 0,
                    "saved": 0,
                    "comments": 0,
                },
            }
        )
    return {"count": 200, "next": "https://cryptopanic.com/api/v1/posts/?page=2", "previous": None, "results": results}


def newsapi_everything(ctx: Ctx) -> Any:
    # The Developer plan serves articles with a 24 h delay.
    published = iso(ctx.now - 86_400 - ctx.rng.randint(60, 3600), ms=False)
    return {
        "status": "ok",
        "totalResults": 9_000 + int(ctx.now // 3600) % 1000,
        "articles": [
            {
                "source": {"id": None, "name": "CoinDesk"},
                "author": "Staff",
                "title": _TITLES[0].format(price=ctx.price()),
                "description": "Bitcoin traded in a narrow range on Tuesday.",
                "url": "https://www.coindesk.com/markets/",
                "urlToImage": None,
                "publishedAt": published,
                "content": "Bitcoin traded in a narrow range on Tuesday… [+1234 chars]",
            }
        ],
    }


def _fear_greed_value(now: float) -> int:
    day = int(now // 86400)
    return 20 + (day * 37) % 61


def _fear_greed_class(value: int) -> str:
    for bound, name in ((24, "Extreme Fear"), (44, "Fear"), (55, "Neutral"), (75, "Greed")):
        if value <= bound:
            return name
    return "Extreme Greed"


def alternative_me_fng(ctx: Ctx) -> Any:
    # Published daily at 00:00 UTC: shift the real day start by the stale fault.
    real_now = ctx.now + ctx.stale
    day_start = int(real_now // 86400) * 86400
    value = _fear_greed_value(real_now)
    return {
        "name": "Fear and Greed Index",
        "data": [
            {
                "value": str(value),
                "value_classification": _fear_greed_class(value),
                "timestamp": str(int(day_start - ctx.stale)),
                "time_until_update": str(int(day_start + 86400 - real_now)),
            }
        ],
        "metadata": {"error": None},
    }


def graph_meta(ctx: Ctx) -> Any:
    h = height("eth", ctx.now) - ctx.rng.randint(0, 3)
    return {
        "data": {
            "_meta": {
                "block": {"number": h, "hash": "0x" + fake_hash("eth", h), "timestamp": block_time("eth", ctx.now) - 12 * 2},
                "deployment": "QmZeCuoZeadgHkGwLwMeguyqUKz1WPWQYKcKyMCeQqGhsF",
                "hasIndexingErrors": False,
            }
        }
    }


# ---------------------------------------------------------------- market_data (more)


def coingecko_global(ctx: Ctx) -> Any:
    price = ctx.price()
    total = price * 19_800_000 / 0.571
    return {
        "data": {
            "active_cryptocurrencies": 17_350,
            "upcoming_icos": 0,
            "ongoing_icos": 49,
            "ended_icos": 3376,
            "markets": 1_240,
            "total_market_cap": {"usd": round(total, 2), "btc": round(total / price, 2)},
            "total_volume": {"usd": 1.2e11, "btc": round(1.2e11 / price, 2)},
            "market_cap_percentage": {"btc": 57.1, "eth": 11.9, "usdt": 4.2},
            "market_cap_change_percentage_24h_usd": 1.2,
            "updated_at": int(ctx.now) - ctx.rng.randint(30, 600),
        }
    }


def coinpaprika_ticker(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_ticker"
    price = ctx.eth() if eth else ctx.price()
    supply = 120_000_000 if eth else 19_800_000
    return {
        "id": "eth-ethereum" if eth else "btc-bitcoin",
        "name": "Ethereum" if eth else "Bitcoin",
        "symbol": "ETH" if eth else "BTC",
        "rank": 2 if eth else 1,
        "circulating_supply": supply,
        "total_supply": supply,
        "max_supply": 0 if eth else 21_000_000,
        "last_updated": iso(ctx.now - ctx.rng.randint(10, 120), ms=False),
        "quotes": {"USD": {"price": price, "volume_24h": 3.0e10, "percent_change_24h": 1.2, "market_cap": int(price * supply)}},
    }


def coincap_asset(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_asset"
    price = ctx.eth() if eth else ctx.price()
    supply = 120_000_000.0 if eth else 19_800_000.0
    return {
        "data": {
            "id": "ethereum" if eth else "bitcoin",
            "rank": "2" if eth else "1",
            "symbol": "ETH" if eth else "BTC",
            "name": "Ethereum" if eth else "Bitcoin",
            "supply": f"{supply:.4f}",
            "maxSupply": None if eth else "21000000.0000000000000000",
            "marketCapUsd": f"{price * supply:.4f}",
            "volumeUsd24Hr": "18234567890.1234",
            "priceUsd": f"{price:.10f}",
            "changePercent24Hr": "1.2101",
            "vwap24Hr": f"{price * 0.998:.10f}",
            "explorer": "https://etherscan.io/" if eth else "https://blockchain.info/",
        },
        "timestamp": ms(ctx.now),
    }


def messari_details(ctx: Ctx) -> Any:
    price = ctx.price()

    def ohlcv(width: float) -> dict[str, float]:
        return {
            "open": round(price * (1 - width), 2),
            "high": round(price * (1 + width), 2),
            "low": round(price * (1 - 2 * width), 2),
            "close": price,
            "volume": 1.9e10,
        }

    return {
        "data": [
            {
                "id": "1e31218a-e44e-4285-820c-8282ee222035",
                "name": "Bitcoin",
                "slug": "bitcoin",
                "symbol": "BTC",
                "rank": 1,
                "category": "Cryptocurrency",
                "sector": "Currency",
                "marketData": {
                    "priceUsd": price,
                    "volume24Hour": 1.9e10,
                    "ohlcv1HourUsd": ohlcv(0.002),
                    "ohlcv24HourUsd": ohlcv(0.012),
                    "marketcap": {"circulatingUsd": round(price * 19_800_000, 2)},
                },
                "returnOnInvestment": {"change1Week": 2.1, "change1Month": -3.4, "change1Year": 61.0},
            }
        ]
    }


def coinlore_global(ctx: Ctx) -> Any:
    return [
        {
            "coins_count": 13_102,
            "active_markets": 28_310,
            "total_mcap": round(ctx.price() * 19_800_000 / 0.571, 2),
            "total_volume": 1.21e11,
            "btc_d": "57.10",
            "eth_d": "11.90",
            "mcap_change": "1.20",
            "volume_change": "-3.10",
            "avg_change_percent": "0.80",
            "volume_ath": 3.99e12,
            "mcap_ath": 4.1e12,
        }
    ]


def coinlore_ticker(ctx: Ctx) -> Any:
    eth = ctx.query.get("id") == "80"
    price = ctx.eth() if eth else ctx.price()
    supply = 120_000_000 if eth else 19_800_000
    return [
        {
            "id": "80" if eth else "90",
            "symbol": "ETH" if eth else "BTC",
            "name": "Ethereum" if eth else "Bitcoin",
            "nameid": "ethereum" if eth else "bitcoin",
            "rank": 2 if eth else 1,
            "price_usd": f"{price:.2f}",
            "percent_change_24h": "1.21",
            "percent_change_1h": "0.12",
            "percent_change_7d": "2.40",
            "price_btc": f"{ETH_PER_BTC if eth else 1:.4f}",
            "market_cap_usd": f"{price * supply:.2f}",
            "volume24": 1.9e10,
            "volume24a": 1.8e10,
            "csupply": f"{supply:.2f}",
            "tsupply": f"{supply:.2f}",
            "msupply": "" if eth else "21000000",
        }
    ]


def livecoinwatch_status(ctx: Ctx) -> Any:
    return {}


def livecoinwatch_credits(ctx: Ctx) -> Any:
    used = int(ctx.now % 86400 // 300)
    return {"dailyCreditsRemaining": 10_000 - used, "dailyCreditsLimit": 10_000}


def livecoinwatch_single(ctx: Ctx) -> Any:
    price = ctx.price()
    return {
        "rate": price,
        "volume": 21_000_000_000,
        "cap": round(price * 19_800_000),
        "liquidity": 900_000_000,
        "delta": {"hour": 1.001, "day": 1.012, "week": 1.021, "month": 0.966, "quarter": 1.11, "year": 1.61},
    }


def coinranking_price(ctx: Ctx) -> Any:
    return {"status": "success", "data": {"price": f"{ctx.price():.10f}", "timestamp": int(ctx.now) - ctx.rng.randint(0, 60)}}


def coinranking_stats(ctx: Ctx) -> Any:
    total = ctx.price() * 19_800_000 / 0.571
    return {
        "status": "success",
        "data": {
            "referenceCurrencyRate": 1,
            "totalCoins": 39_113,
            "totalMarkets": 41_020,
            "totalExchanges": 190,
            "totalMarketCap": f"{total:.0f}",
            "total24hVolume": "121000000000",
            "btcDominance": 57.1,
            "bestCoins": [],
            "newestCoins": [],
        },
    }


def coinapi_rate(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_rate"
    ts = ctx.now - ctx.rng.uniform(0.5, 30)
    # CoinAPI writes seven fractional digits.
    time_text = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return {"time": time_text, "asset_id_base": "ETH" if eth else "BTC", "asset_id_quote": "USD", "rate": ctx.eth() if eth else ctx.price()}


def coindesk_tick(ctx: Ctx) -> Any:
    instrument = ctx.query.get("instruments", "BTC-USD")
    price = ctx.price_of(instrument)
    updated = int(ctx.now) - ctx.rng.randint(0, 10)
    return {
        "Data": {
            instrument: {
                "TYPE": "1101",
                "MARKET": ctx.query.get("market", "cadli"),
                "INSTRUMENT": instrument,
                "CCSEQ": 31_000_000 + int(ctx.now) % 1_000_000,
                "VALUE": price,
                "VALUE_FLAG": "UP",
                "VALUE_LAST_UPDATE_TS": updated,
                "VALUE_LAST_UPDATE_TS_NS": 123_000_000,
                "CURRENT_DAY_OPEN": round(price * 0.99, 2),
                "CURRENT_DAY_HIGH": round(price * 1.01, 2),
                "CURRENT_DAY_LOW": round(price * 0.985, 2),
                "CURRENT_DAY_CHANGE_PERCENTAGE": 1.01,
            }
        },
        "Err": {},
    }


# ---------------------------------------------------------------- exchanges (more)


def bybit_system_status(ctx: Ctx) -> Any:
    return _bybit_envelope(ctx, {"list": _window_item(ctx)})


def coinbase_time(ctx: Ctx) -> Any:
    return {"iso": iso(ctx.now), "epoch": round(ctx.now, 3)}


def coinbase_ticker(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.endpoint)
    trade = ctx.now - ctx.rng.uniform(0, 5)
    return {
        "ask": f"{price + 0.01:.2f}",
        "bid": f"{price:.2f}",
        "volume": "12345.67891234",
        "trade_id": 612_345_678 + int(ctx.now) % 100_000,
        "price": f"{price:.2f}",
        "size": "0.00120000",
        "time": datetime.fromtimestamp(trade, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "rfq_volume": "12.3456",
        "conversions_volume": "0",
    }


def coinbase_product(ctx: Ctx) -> Any:
    return {
        "id": "BTC-USD",
        "base_currency": "BTC",
        "quote_currency": "USD",
        "quote_increment": "0.01",
        "base_increment": "0.00000001",
        "display_name": "BTC-USD",
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.02000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }


def bitfinex_status(ctx: Ctx) -> Any:
    return [1]


def bitfinex_ticker(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.endpoint)
    # [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]
    return [
        round(price - 1, 1),
        10.5,
        round(price + 1, 1),
        9.8,
        round(price * 0.012, 1),
        0.0121,
        price,
        2345.6,
        round(price * 1.015, 1),
        round(price * 0.982, 1),
    ]


def kucoin_timestamp(ctx: Ctx) -> Any:
    return {"code": "200000", "data": ms(ctx.now)}


def kucoin_status(ctx: Ctx) -> Any:
    return {"code": "200000", "data": {"status": "open", "msg": ""}}


def kucoin_level1(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("symbol", "BTC-USDT"))
    return {
        "code": "200000",
        "data": {
            "time": ms(ctx.now) - ctx.rng.randint(0, 500),
            "sequence": str(15_000_000_000 + int(ctx.now) % 1_000_000),
            "price": f"{price:.1f}",
            "size": "0.00012",
            "bestBid": f"{price - 0.1:.1f}",
            "bestBidSize": "0.5521",
            "bestAsk": f"{price:.1f}",
            "bestAskSize": "0.3012",
        },
    }


def gate_time(ctx: Ctx) -> Any:
    return {"server_time": ms(ctx.now)}


def gate_tickers(ctx: Ctx) -> Any:
    pair = ctx.query.get("currency_pair", "BTC_USDT")
    price = ctx.price_of(pair)
    return [
        {
            "currency_pair": pair,
            "last": f"{price:.2f}",
            "lowest_ask": f"{price + 0.1:.2f}",
            "highest_bid": f"{price:.2f}",
            "change_percentage": "1.21",
            "base_volume": "1234.5",
            "quote_volume": f"{1234.5 * price:.2f}",
            "high_24h": f"{price * 1.015:.2f}",
            "low_24h": f"{price * 0.982:.2f}",
        }
    ]


def bitstamp_ticker(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.endpoint)
    return {
        "timestamp": str(int(ctx.now) - ctx.rng.randint(0, 5)),
        "open": f"{price * 0.988:.0f}",
        "high": f"{price * 1.015:.0f}",
        "low": f"{price * 0.982:.0f}",
        "last": f"{price:.0f}",
        "volume": "2345.67890000",
        "vwap": f"{price * 0.998:.0f}",
        "bid": f"{price - 1:.0f}",
        "ask": f"{price + 1:.0f}",
        "side": "0",
        "open_24": f"{price * 0.988:.0f}",
        "percent_change_24": "1.21",
    }


def gemini_pubticker(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_ticker"
    price = ctx.price_of(ctx.endpoint)
    return {
        "bid": f"{price - 0.01:.2f}",
        "ask": f"{price + 0.01:.2f}",
        "last": f"{price:.2f}",
        "volume": {"ETH" if eth else "BTC": "1234.5", "USD": f"{1234.5 * price:.2f}", "timestamp": ms(ctx.now) - ctx.rng.randint(0, 5000)},
    }


def htx_timestamp(ctx: Ctx) -> Any:
    return {"status": "ok", "data": ms(ctx.now)}


def htx_merged(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("symbol", "btcusdt"))
    symbol = ctx.query.get("symbol", "btcusdt")
    return {
        "ch": f"market.{symbol}.detail.merged",
        "status": "ok",
        "ts": ms(ctx.now),
        "tick": {
            "id": 331_250_000_000 + int(ctx.now) % 100_000,
            "version": 331_250_000_000 + int(ctx.now) % 100_000,
            "open": round(price * 0.988, 2),
            "close": price,
            "low": round(price * 0.982, 2),
            "high": round(price * 1.015, 2),
            "amount": 2345.6,
            "vol": round(2345.6 * price, 2),
            "count": 123_456,
            "bid": [round(price - 0.01, 2), 1.1],
            "ask": [price, 0.9],
        },
    }


def htx_market_status(ctx: Ctx) -> Any:
    return {"code": 200, "message": "success", "data": {"marketStatus": 1}, "success": True}


def deribit_test(ctx: Ctx) -> Any:
    us = int(ctx.now * 1e6)
    return {"jsonrpc": "2.0", "result": {"version": "1.2.26"}, "usIn": us, "usOut": us + 120, "usDiff": 120, "testnet": False}


def deribit_index(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("index_name", "btc_usd"))
    us = int(ctx.now * 1e6)
    return {"jsonrpc": "2.0", "result": {"index_price": price, "estimated_delivery_price": price}, "usIn": us, "usOut": us + 95, "usDiff": 95, "testnet": False}


def bitget_time(ctx: Ctx) -> Any:
    return {"code": "00000", "msg": "success", "requestTime": ms(ctx.now), "data": {"serverTime": str(ms(ctx.now))}}


def bitget_tickers(ctx: Ctx) -> Any:
    price = ctx.price_of(ctx.query.get("symbol", "BTCUSDT"))
    return {
        "code": "00000",
        "msg": "success",
        "requestTime": ms(ctx.now),
        "data": [
            {
                "symbol": ctx.query.get("symbol", "BTCUSDT"),
                "high24h": f"{price * 1.015:.2f}",
                "open": f"{price * 0.988:.2f}",
                "low24h": f"{price * 0.982:.2f}",
                "lastPr": f"{price:.2f}",
                "quoteVolume": f"{1234.5 * price:.2f}",
                "baseVolume": "1234.5",
                "usdtVolume": f"{1234.5 * price:.2f}",
                "bidPr": f"{price - 0.01:.2f}",
                "askPr": f"{price:.2f}",
                "bidSz": "0.5",
                "askSz": "0.3",
                "openUtc": f"{price * 0.99:.2f}",
                "ts": str(ms(ctx.now) - ctx.rng.randint(0, 500)),
                "changeUtc24h": "0.0101",
                "change24h": "0.0121",
            }
        ],
    }


def cryptocom_tickers(ctx: Ctx) -> Any:
    instrument = ctx.query.get("instrument_name", "BTC_USDT")
    price = ctx.price_of(instrument)
    return {
        "id": -1,
        "method": "public/get-tickers",
        "code": 0,
        "result": {
            "data": [
                {
                    "i": instrument,
                    "h": f"{price * 1.015:.2f}",
                    "l": f"{price * 0.982:.2f}",
                    "a": f"{price:.2f}",
                    "v": "1042.4626",
                    "vv": f"{1042.4626 * price:.2f}",
                    "c": "0.0121",
                    "b": f"{price - 0.01:.2f}",
                    "k": f"{price + 0.01:.2f}",
                    "oi": "0",
                    "t": ms(ctx.now) - ctx.rng.randint(0, 800),
                }
            ]
        },
    }


def bitmex_instrument(ctx: Ctx) -> Any:
    symbol = ctx.query.get("symbol", "XBTUSD")
    price = ctx.price_of(symbol)
    return [
        {
            "symbol": symbol,
            "rootSymbol": "ETH" if "ETH" in symbol else "XBT",
            "state": "Open",
            "typ": "FFWCSX",
            "quoteCurrency": "USD",
            "lastPrice": round(price, 1),
            "markPrice": round(price * 1.0001, 2),
            "indicativeSettlePrice": round(price, 2),
            "fundingRate": 0.0001,
            "openInterest": 420_000_000,
            "timestamp": iso(ctx.now - ctx.rng.uniform(0, 5)),
        }
    ]


# ---------------------------------------------------------------- explorers (more)


def mempool_prices(ctx: Ctx) -> Any:
    usd = int(ctx.price())
    return {
        "time": int(ctx.now) - ctx.rng.randint(0, 300),
        "USD": usd,
        "EUR": int(usd * 0.92),
        "GBP": int(usd * 0.79),
        "CAD": int(usd * 1.36),
        "CHF": int(usd * 0.88),
        "AUD": int(usd * 1.52),
        "JPY": int(usd * 151),
    }


def mempool_difficulty(ctx: Ctx) -> Any:
    h = height("btc", ctx.now)
    into_epoch = h % 2016
    return {
        "progressPercent": round(into_epoch / 2016 * 100, 2),
        "difficultyChange": 1.8,
        "estimatedRetargetDate": ms(ctx.now + (2016 - into_epoch) * 600),
        "remainingBlocks": 2016 - into_epoch,
        "remainingTime": (2016 - into_epoch) * 600_000,
        "previousRetarget": -0.9,
        "previousTime": int(ctx.now) - into_epoch * 600,
        "nextRetargetHeight": h - into_epoch + 2016,
        "timeAvg": 589_000,
        "adjustedTimeAvg": 590_000,
        "timeOffset": 0,
        "expectedBlocks": round(into_epoch * 1.01, 2),
    }


def esplora_fee_estimates(ctx: Ctx) -> Any:
    fastest = ctx.rng.uniform(3, 40)
    targets = (1, 2, 3, 4, 5, 6, 10, 20, 25, 144, 504, 1008)
    return {str(t): round(max(1.0, fastest / (1 + i * 0.35)), 3) for i, t in enumerate(targets)}


def solscan_last_block(ctx: Ctx) -> Any:
    slot = height("sol", ctx.now)
    return {
        "success": True,
        "data": [
            {
                "fee_rewards": ctx.rng.randint(3_000_000, 9_000_000),
                "transactions_count": ctx.rng.randint(800, 2500),
                "current_slot": slot,
                "block_height": slot - SOL_SKIPPED_SLOTS,
                "block_time": block_time("sol", ctx.now),
                "time": iso(block_time("sol", ctx.now)),
                "blockhash": fake_hash("sol", slot)[:44],
                "parent_slot": slot - 1,
                "previous_block_hash": fake_hash("sol", slot - 1)[:44],
            }
        ],
    }


def blockcypher_chain(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_chain"
    chain = "eth" if eth else "btc"
    h = height(chain, ctx.now)
    block_hash = fake_hash(chain, h)
    out: dict[str, Any] = {
        "name": "ETH.main" if eth else "BTC.main",
        "height": h,
        "hash": block_hash,
        # Go's time format: nanoseconds.
        "time": iso_ns(block_time(chain, ctx.now) + ctx.rng.uniform(0.1, 0.9)),
        "latest_url": f"https://api.blockcypher.com/v1/{chain}/main/blocks/{block_hash}",
        "previous_hash": fake_hash(chain, h - 1),
        "previous_url": f"https://api.blockcypher.com/v1/{chain}/main/blocks/{fake_hash(chain, h - 1)}",
        "peer_count": 250,
        "unconfirmed_count": ctx.rng.randint(1_000, 9_000),
        "last_fork_height": h - 1_000,
        "last_fork_hash": fake_hash(chain, h - 1_000),
    }
    if eth:
        gwei = ctx.market.gas_gwei()
        out.update(high_gas_price=int(gwei * 1.5e9), medium_gas_price=int(gwei * 1e9), low_gas_price=int(gwei * 0.8e9))
    else:
        out.update(high_fee_per_kb=46_086, medium_fee_per_kb=29_422, low_fee_per_kb=12_500)
    return out


def blockchain_com_block_count(ctx: Ctx) -> Any:
    return str(height("btc", ctx.now))


def blockchain_com_latest_block(ctx: Ctx) -> Any:
    h = height("btc", ctx.now)
    return {
        "hash": "00000000000000000000" + fake_hash("btc", h, size=22),
        "time": block_time("btc", ctx.now),
        "block_index": h,
        "height": h,
        "txIndexes": [7_100_000_000_000 + i for i in range(5)],
    }


def blockchain_com_ticker(ctx: Ctx) -> Any:
    price = ctx.price()

    def quote(rate: float, symbol: str) -> dict[str, Any]:
        p = round(price * rate, 2)
        return {"15m": p, "last": p, "buy": p, "sell": p, "symbol": symbol}

    return {"USD": quote(1.0, "USD"), "EUR": quote(0.92, "EUR"), "GBP": quote(0.79, "GBP")}


def subscan_metadata(ctx: Ctx) -> Any:
    h = height("dot", ctx.now)
    return {
        "code": 0,
        "message": "Success",
        "generated_at": int(ctx.now),
        "data": {
            "avgBlockTime": "6.0",
            "blockNum": str(h),
            "blockTime": str(block_time("dot", ctx.now)),
            "count_account": "1612345",
            "count_event": "880123456",
            "count_signed_extrinsic": "40123456",
            "finalized_blockNum": str(h - 2),
            "implementName": "polkadot",
            "networkNode": "polkadot",
            "specVersion": "1004000",
            "waiting_validator": "120",
        },
    }


# ---------------------------------------------------------------- other RPC nodes


def solana_rpc(ctx: Ctx) -> Any:
    method = ctx.body.get("method") if isinstance(ctx.body, dict) else None
    slot = height("sol", ctx.now)
    results: dict[str, Any] = {"getHealth": "ok", "getSlot": slot, "getBlockHeight": slot - SOL_SKIPPED_SLOTS}
    if method not in results:
        return {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": ctx.rpc_id}
    return {"jsonrpc": "2.0", "result": results[str(method)], "id": ctx.rpc_id}


def trongrid_now_block(ctx: Ctx) -> Any:
    h = height("tron", ctx.now)
    return {
        "blockID": "000000000" + fake_hash("tron", h)[9:],
        "block_header": {
            "raw_data": {
                "number": h,
                "txTrieRoot": fake_hash("tron-tx", h),
                "witness_address": "41" + fake_hash("witness", h % 27, size=20),
                "parentHash": "000000000" + fake_hash("tron", h - 1)[9:],
                "version": 31,
                "timestamp": block_time("tron", ctx.now) * 1000,
            },
            "witness_signature": fake_hash("sig", h) * 2,
        },
        "transactions": [],
    }


# ---------------------------------------------------------------- news (more)


def newsapi_top_headlines(ctx: Ctx) -> Any:
    return newsapi_everything(ctx)


def cryptocompare_news(ctx: Ctx) -> Any:
    price = ctx.price()
    items = []
    for i in range(3):
        published = int(ctx.now) - ctx.rng.randint(60, 1200) - 1200 * i
        items.append(
            {
                "id": str(40_000_000 + int(ctx.now) // 600 - i),
                "guid": f"https://www.coindesk.com/markets/{int(ctx.now) // 600 - i}/",
                "published_on": published,
                "imageurl": "https://images.cryptocompare.com/news/default/coindesk.png",
                "title": _TITLES[i].format(price=price),
                "url": "https://www.coindesk.com/markets/",
                "body": "Bitcoin traded in a narrow range.",
                "tags": "BTC|Market",
                "lang": "EN",
                "upvotes": "0",
                "downvotes": "0",
                "categories": "BTC|Market",
                "source_info": {"name": "CoinDesk", "img": "https://images.cryptocompare.com/news/default/coindesk.png", "lang": "EN"},
                "source": "coindesk",
            }
        )
    return {"Type": 100, "Message": "News list successfully returned", "Promoted": [], "Data": items, "RateLimit": {}, "HasWarning": False}


def cryptocompare_news_categories(ctx: Ctx) -> Any:
    return [
        {"categoryName": "BTC", "wordsAssociatedWithCategory": ["BTC", "BITCOIN", "SATOSHI"]},
        {"categoryName": "ETH", "wordsAssociatedWithCategory": ["ETH", "ETHEREUM", "VITALIK"]},
        {"categoryName": "Regulation", "wordsAssociatedWithCategory": ["REGULATION", "SEC", "CFTC"]},
    ]


def coindesk_news(ctx: Ctx) -> Any:
    price = ctx.price()
    published = int(ctx.now) - ctx.rng.randint(60, 1800)
    return {
        "Data": [
            {
                "TYPE": "121",
                "ID": 51_000_000 + int(ctx.now) // 600,
                "GUID": f"https://www.coindesk.com/markets/{int(ctx.now) // 600}/",
                "PUBLISHED_ON": published,
                "IMAGE_URL": "https://resources.cryptocompare.com/news/default/coindesk.png",
                "TITLE": _TITLES[1].format(price=price),
                "URL": "https://www.coindesk.com/markets/",
                "SOURCE_ID": 5,
                "BODY": "Bitcoin traded in a narrow range.",
                "KEYWORDS": "BTC|Market",
                "LANG": "EN",
                "UPVOTES": 0,
                "DOWNVOTES": 0,
                "SCORE": 0,
                "SENTIMENT": "POSITIVE",
                "STATUS": "ACTIVE",
                "SOURCE_DATA": {"NAME": "CoinDesk", "SOURCE_KEY": "coindesk", "LANG": "EN"},
                "CATEGORY_DATA": [{"TYPE": "122", "ID": 1, "NAME": "BTC", "CATEGORY": "BTC"}],
            }
        ],
        "Err": {},
    }


def coinmarketcal_events(ctx: Ctx) -> Any:
    event_day = datetime.fromtimestamp(ctx.now + 5 * 86400, UTC).strftime("%Y-%m-%dT00:00:00Z")
    return {
        "body": [
            {
                "id": 250_000 + int(ctx.now) // 86400,
                "title": {"en": "Bitcoin Conference"},
                "coins": [{"id": "bitcoin", "name": "Bitcoin", "rank": 1, "symbol": "BTC", "fullname": "Bitcoin (BTC)"}],
                "date_event": event_day,
                "displayed_date": event_day[:10],
                "can_occur_before": False,
                "categories": [{"id": 5, "name": "Conference"}],
                "proof": "https://coinmarketcal.com/proof.png",
                "source": "https://b.tc/conference",
                "created_date": iso(ctx.now - 3 * 86400, ms=False),
            }
        ],
        "_metadata": {"max": int(ctx.query.get("max", "1") or 1), "page": 1, "page_count": 420, "total_count": 420},
    }


# ---------------------------------------------------------------- sentiment (more)


def alternative_me_ticker(ctx: Ctx) -> Any:
    price = ctx.price()
    return {
        "data": {
            "1": {
                "id": 1,
                "name": "Bitcoin",
                "symbol": "BTC",
                "website_slug": "bitcoin",
                "rank": 1,
                "circulating_supply": 19_800_000,
                "total_supply": 19_800_000,
                "max_supply": 21_000_000,
                "quotes": {
                    "USD": {
                        "price": price,
                        "volume_24h": 2.1e10,
                        "market_cap": round(price * 19_800_000),
                        "percentage_change_1h": 0.1,
                        "percentage_change_24h": 1.2,
                        "percentage_change_7d": 2.4,
                    }
                },
                "last_updated": int(ctx.now) - ctx.rng.randint(30, 300),
            }
        },
        "metadata": {"timestamp": int(ctx.now), "num_cryptocurrencies": 1, "error": None},
    }


def lunarcrush_coin(ctx: Ctx) -> Any:
    price = ctx.price()
    return {
        "config": {"id": "bitcoin", "name": "Bitcoin", "symbol": "BTC", "topic": "bitcoin", "generated": int(ctx.now) - ctx.rng.randint(0, 900)},
        "data": {
            "id": 1,
            "name": "Bitcoin",
            "symbol": "BTC",
            "price": price,
            "price_btc": 1,
            "market_cap": round(price * 19_800_000, 2),
            "percent_change_24h": 1.2,
            "percent_change_7d": 2.4,
            "percent_change_30d": -3.1,
            "volume_24h": 2.1e10,
            "max_supply": 21_000_000,
            "circulating_supply": 19_800_000,
            "close": price,
            "galaxy_score": 40 + int(ctx.now // 3600) % 40,
            "alt_rank": 1 + int(ctx.now // 3600) % 25,
            "volatility": 0.012,
            "market_cap_rank": 1,
            "sentiment": 70 + int(ctx.now // 3600) % 20,
            "social_dominance": 22.5,
        },
    }


def santiment_graphql(ctx: Ctx) -> Any:
    hour = int(ctx.now // 3600) * 3600
    price = ctx.price()
    series = [{"datetime": iso(hour - 3600 * i, ms=False), "value": round(price * (1 - 0.001 * i), 2)} for i in range(24, -1, -1)]
    return {"data": {"getMetric": {"timeseriesDataJson": series}}}


def coinglass_funding(ctx: Ctx) -> Any:
    period = 8 * 3600
    start = int(ctx.now // period) * period
    rate = f"{0.0001 + (int(ctx.now // period) % 5) * 0.00001:.6f}"
    return {"code": "0", "msg": "success", "data": [{"time": start * 1000, "open": "0.000100", "high": rate, "low": "0.000080", "close": rate}]}


def binance_premium_index(ctx: Ctx) -> Any:
    price = ctx.price()
    period = 8 * 3600
    return {
        "symbol": ctx.query.get("symbol", "BTCUSDT"),
        "markPrice": f"{price * 1.0002:.8f}",
        "indexPrice": f"{price:.8f}",
        "estimatedSettlePrice": f"{price * 1.0001:.8f}",
        "lastFundingRate": "0.00010000",
        "interestRate": "0.00010000",
        "nextFundingTime": (int(ctx.now // period) + 1) * period * 1000,
        "time": ms(ctx.now),
    }


def binance_long_short(ctx: Ctx) -> Any:
    start = int(ctx.now // 300) * 300
    long_account = 0.60 + (start // 300 % 10) * 0.005
    return [
        {
            "symbol": ctx.query.get("symbol", "BTCUSDT"),
            "longShortRatio": f"{long_account / (1 - long_account):.4f}",
            "longAccount": f"{long_account:.4f}",
            "shortAccount": f"{1 - long_account:.4f}",
            "timestamp": start * 1000,
        }
    ]


def binance_open_interest(ctx: Ctx) -> Any:
    return {"openInterest": f"{82_000 + int(ctx.now) % 3_000}.123", "symbol": ctx.query.get("symbol", "BTCUSDT"), "time": ms(ctx.now)}


# ---------------------------------------------------------------- onchain and oracles

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
PYTH_FEEDS = {
    "0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43": "BTC",
    "0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace": "ETH",
}


def defillama_chains(ctx: Ctx) -> Any:
    return [
        {"gecko_id": "ethereum", "tvl": 6.2e10 + (int(ctx.now) % 3600) * 1e5, "tokenSymbol": "ETH", "cmcId": "1027", "name": "Ethereum", "chainId": 1},
        {"gecko_id": "solana", "tvl": 9.1e9, "tokenSymbol": "SOL", "cmcId": "5426", "name": "Solana", "chainId": None},
        {"gecko_id": "tron", "tvl": 5.8e9, "tokenSymbol": "TRX", "cmcId": "1958", "name": "Tron", "chainId": None},
    ]


def defillama_protocol_tvl(ctx: Ctx) -> Any:
    # /tvl/{protocol} answers a bare number.
    return 5.1e9 + (int(ctx.now) % 3600) * 1e4


def dune_results(ctx: Ctx) -> Any:
    ended = ctx.now - ctx.rng.randint(600, 6 * 3600)
    return {
        "execution_id": "01HS" + fake_hash("dune", int(ctx.now) // 3600, size=11).upper()[:22],
        "query_id": 3324376,
        "is_execution_finished": True,
        "state": "QUERY_STATE_COMPLETED",
        "submitted_at": iso(ended - 20),
        "expires_at": iso(ended + 90 * 86400),
        "execution_started_at": iso(ended - 15),
        "execution_ended_at": iso(ended),
        "result": {
            "rows": [{"day": iso(ended, ms=False)[:10], "value": round(ctx.rng.uniform(1e5, 2e5), 2)}],
            "metadata": {
                "column_names": ["day", "value"],
                "column_types": ["date", "double"],
                "row_count": 1,
                "result_set_bytes": 40,
                "total_row_count": 365,
                "total_result_set_bytes": 14600,
                "datapoint_count": 2,
                "pending_time_millis": 12,
                "execution_time_millis": 980,
            },
        },
        "next_offset": 1,
        "next_uri": "https://api.dune.com/api/v1/execution/01HS/results?limit=1&offset=1",
    }


def glassnode_close(ctx: Ctx) -> Any:
    # Daily points, t the day's start; the last one is the last full day.
    last_day = int(ctx.now // 86400) * 86400 - 86400
    price = ctx.price()
    return [{"t": last_day - 86400 * i, "v": round(price * (1 - 0.004 * i), 2)} for i in range(6, -1, -1)]


def goldrush_block(ctx: Ctx) -> Any:
    h = height("eth", ctx.now) - ctx.rng.randint(0, 2)
    return {
        "data": {
            "updated_at": iso(ctx.now),
            "chain_id": 1,
            "chain_name": "eth-mainnet",
            "items": [
                {
                    "signed_at": iso(block_time("eth", ctx.now) - 12 * (height("eth", ctx.now) - h), ms=False),
                    "height": h,
                    "block_hash": "0x" + fake_hash("eth", h),
                    "miner_address": "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5",
                    "gas_used": ctx.rng.randint(8_000_000, 30_000_000),
                    "gas_limit": 36_000_000,
                }
            ],
            "pagination": None,
        },
        "error": False,
        "error_message": None,
        "error_code": None,
    }


def moralis_version(ctx: Ctx) -> Any:
    return {"version": "2.2"}


def moralis_price(ctx: Ctx) -> Any:
    eth = ctx.eth()
    return {
        "tokenName": "Wrapped Ether",
        "tokenSymbol": "WETH",
        "tokenLogo": "https://logo.moralis.io/0x1_0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2.png",
        "tokenDecimals": "18",
        "nativePrice": {"value": "1000000000000000000", "decimals": 18, "name": "Ether", "symbol": "ETH", "address": WETH},
        "usdPrice": eth,
        "usdPriceFormatted": f"{eth:.2f}",
        "exchangeName": "Uniswap v3",
        "exchangeAddress": "0x1f98431c8ad98523631ae4a59f267346ea31f984",
        "tokenAddress": WETH,
        "priceLastChangedAtBlock": str(height("eth", ctx.now) - ctx.rng.randint(0, 5)),
        "possibleSpam": False,
        "verifiedContract": True,
        "pairAddress": "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640",
        "pairTotalLiquidityUsd": "165000000.12",
    }


def oneinch_price(ctx: Ctx) -> Any:
    return {WETH: f"{ctx.eth():.8f}"}


def zerox_price(ctx: Ctx) -> Any:
    # 1 WETH in, USDC (6 decimals) out, a little under the spot price for the route's costs.
    buy = int(ctx.eth() * 0.9985 * 1_000_000)
    return {
        "allowanceTarget": "0x000000000022d473030f116ddee9f6b43ac78ba3",
        "blockNumber": str(height("eth", ctx.now)),
        "buyAmount": str(buy),
        "buyToken": USDC,
        "fees": {"integratorFee": None, "zeroExFee": None, "gasFee": None},
        "gas": "180000",
        "gasPrice": str(int(ctx.market.gas_gwei() * 1e9)),
        "issues": {"allowance": None, "balance": None, "simulationIncomplete": False, "invalidSourcesPassed": []},
        "liquidityAvailable": True,
        "minBuyAmount": str(int(buy * 0.99)),
        "route": {
            "fills": [{"from": WETH, "to": USDC, "source": "Uniswap_V3", "proportionBps": "10000"}],
            "tokens": [{"address": WETH, "symbol": "WETH"}, {"address": USDC, "symbol": "USDC"}],
        },
        "sellAmount": "1000000000000000000",
        "sellToken": WETH,
        "totalNetworkFee": "1200000000000000",
        "zid": "0x" + fake_hash("zid", int(ctx.now), size=12),
    }


def pyth_latest(ctx: Ctx) -> Any:
    feed = ctx.query.get("ids[]", next(iter(PYTH_FEEDS)))
    price = ctx.eth() if PYTH_FEEDS.get(feed) == "ETH" else ctx.price()
    published = int(ctx.now) - ctx.rng.randint(0, 3)
    raw = str(int(price * 1e8))

    def quote(value: str) -> dict[str, Any]:
        return {"price": value, "conf": str(int(price * 1e8 * 0.0004)), "expo": -8, "publish_time": published}

    return {
        "binary": {"encoding": "hex", "data": [fake_hash("pyth", feed, published) * 4]},
        "parsed": [
            {
                "id": feed.removeprefix("0x"),
                "price": quote(raw),
                "ema_price": quote(str(int(price * 0.9995 * 1e8))),
                "metadata": {"slot": height("sol", ctx.now), "proof_available_time": published + 1, "prev_publish_time": published - 1},
            }
        ],
    }


def redstone_prices(ctx: Ctx) -> Any:
    symbol = ctx.query.get("symbol", "BTC")
    price = ctx.price_of(symbol)
    ts = (int(ctx.now) // 10) * 10_000 - 10_000  # RedStone signs a price every 10 s
    return [
        {
            "id": "047907fd-8c7a-4692-ba22-" + fake_hash("redstone", ts, size=6),
            "symbol": symbol,
            "provider": "I-5rWUehEv-MjdK9gFw09RxfSLQX9DIHxG614Wf8qo0",
            "value": price,
            "liteEvmSignature": "0x" + fake_hash("sig", symbol, ts, size=65),
            "permawebTx": "mock-permaweb-tx",
            "version": "0.4",
            "source": {"binance": round(price * 0.9999, 2), "coinbaseprime": round(price * 1.0001, 2), "kraken": price},
            "timestamp": ts,
            "minutes": 0,
        }
    ]


def dia_quotation(ctx: Ctx) -> Any:
    eth = ctx.endpoint == "eth_quotation"
    price = ctx.eth() if eth else ctx.price()
    return {
        "Symbol": "ETH" if eth else "BTC",
        "Name": "Ethereum" if eth else "Bitcoin",
        "Address": "0x0000000000000000000000000000000000000000",
        "Blockchain": "Ethereum" if eth else "Bitcoin",
        "Price": price,
        "PriceYesterday": round(price * 0.988, 4),
        "VolumeYesterdayUSD": 1.2e10,
        "Time": iso_ns(ctx.now - ctx.rng.uniform(20, 120)),
        "Source": "diadata.org",
        "Signature": "0x" + fake_hash("dia", int(ctx.now), size=65),
    }


def generic(ctx: Ctx) -> Any:
    """For endpoints of user configs the simulator knows nothing about."""
    return {"ok": True, "timestamp": int(ctx.now), "provider": ctx.provider, "endpoint": ctx.endpoint}


# (provider, endpoint) -> generator; (provider, "*") serves any endpoint of that provider.
PAYLOADS: dict[tuple[str, str], Generator] = {
    # market_data
    ("coingecko", "ping"): coingecko_ping,
    ("coingecko", "btc_price"): coingecko_price,
    ("coingecko", "global"): coingecko_global,
    ("coinmarketcap", "key_info"): cmc_key_info,
    ("coinmarketcap", "btc_quote"): cmc_quote,
    ("cryptocompare", "rate_limit"): cryptocompare_rate_limit,
    ("cryptocompare", "btc_price"): cryptocompare_pricemultifull,
    ("coinpaprika", "global"): coinpaprika_global,
    ("coinpaprika", "btc_ticker"): coinpaprika_ticker,
    ("coinpaprika", "eth_ticker"): coinpaprika_ticker,
    ("coincap", "btc_asset"): coincap_asset,
    ("coincap", "eth_asset"): coincap_asset,
    ("messari", "btc_details"): messari_details,
    ("coinlore", "global"): coinlore_global,
    ("coinlore", "btc_ticker"): coinlore_ticker,
    ("coinlore", "eth_ticker"): coinlore_ticker,
    ("livecoinwatch", "status"): livecoinwatch_status,
    ("livecoinwatch", "credits"): livecoinwatch_credits,
    ("livecoinwatch", "btc_rate"): livecoinwatch_single,
    ("coinranking", "btc_price"): coinranking_price,
    ("coinranking", "stats"): coinranking_stats,
    ("coinapi", "btc_rate"): coinapi_rate,
    ("coinapi", "eth_rate"): coinapi_rate,
    ("coindesk", "btc_index"): coindesk_tick,
    ("coindesk", "eth_index"): coindesk_tick,
    # exchanges
    ("binance", "ping"): binance_ping,
    ("binance", "server_time"): binance_time,
    ("binance", "btc_ticker"): binance_ticker_24hr,
    ("binance", "system_status"): binance_system_status,
    ("okx", "system_status"): okx_system_status,
    ("coinbase", "system_status"): statuspage_summary,
    ("bybit", "server_time"): bybit_time,
    ("bybit", "btc_ticker"): bybit_tickers,
    ("bybit", "eth_ticker"): bybit_tickers,
    ("bybit", "system_status"): bybit_system_status,
    ("okx", "server_time"): okx_time,
    ("okx", "btc_ticker"): okx_ticker,
    ("kraken", "system_status"): kraken_system_status,
    ("kraken", "btc_ticker"): kraken_ticker,
    ("coinbase", "server_time"): coinbase_time,
    ("coinbase", "btc_ticker"): coinbase_ticker,
    ("coinbase", "eth_ticker"): coinbase_ticker,
    ("coinbase", "btc_product"): coinbase_product,
    ("bitfinex", "platform_status"): bitfinex_status,
    ("bitfinex", "btc_ticker"): bitfinex_ticker,
    ("bitfinex", "eth_ticker"): bitfinex_ticker,
    ("kucoin", "server_time"): kucoin_timestamp,
    ("kucoin", "status"): kucoin_status,
    ("kucoin", "btc_ticker"): kucoin_level1,
    ("kucoin", "eth_ticker"): kucoin_level1,
    ("gateio", "server_time"): gate_time,
    ("gateio", "btc_ticker"): gate_tickers,
    ("gateio", "eth_ticker"): gate_tickers,
    ("bitstamp", "btc_ticker"): bitstamp_ticker,
    ("bitstamp", "eth_ticker"): bitstamp_ticker,
    ("gemini", "btc_ticker"): gemini_pubticker,
    ("gemini", "eth_ticker"): gemini_pubticker,
    ("htx", "server_time"): htx_timestamp,
    ("htx", "btc_ticker"): htx_merged,
    ("htx", "eth_ticker"): htx_merged,
    ("htx", "market_status"): htx_market_status,
    ("mexc", "ping"): binance_ping,
    ("mexc", "server_time"): binance_time,
    ("mexc", "btc_ticker"): binance_ticker_24hr,
    ("mexc", "eth_ticker"): binance_ticker_24hr,
    ("deribit", "test"): deribit_test,
    ("deribit", "btc_index"): deribit_index,
    ("deribit", "eth_index"): deribit_index,
    ("bitget", "server_time"): bitget_time,
    ("bitget", "btc_ticker"): bitget_tickers,
    ("bitget", "eth_ticker"): bitget_tickers,
    ("cryptocom", "btc_ticker"): cryptocom_tickers,
    ("cryptocom", "eth_ticker"): cryptocom_tickers,
    ("bitmex", "btc_instrument"): bitmex_instrument,
    ("bitmex", "eth_instrument"): bitmex_instrument,
    # explorers
    ("etherscan", "*"): etherscan_api,
    ("bscscan", "*"): etherscan_api,
    ("polygonscan", "*"): etherscan_api,
    ("arbiscan", "*"): etherscan_api,
    ("tronscan", "latest_block"): tronscan_block,
    ("blockchair", "bitcoin_stats"): blockchair_stats,
    ("blockchair", "ethereum_stats"): blockchair_stats,
    ("mempool_space", "tip_height"): mempool_tip_height,
    ("mempool_space", "recent_blocks"): mempool_blocks,
    ("mempool_space", "fees"): mempool_fees,
    ("mempool_space", "prices"): mempool_prices,
    ("mempool_space", "difficulty_adjustment"): mempool_difficulty,
    # Blockstream runs the same Esplora API as mempool.space.
    ("blockstream", "tip_height"): mempool_tip_height,
    ("blockstream", "recent_blocks"): mempool_blocks,
    ("blockstream", "fee_estimates"): esplora_fee_estimates,
    ("solscan", "last_block"): solscan_last_block,
    ("blockcypher", "btc_chain"): blockcypher_chain,
    ("blockcypher", "eth_chain"): blockcypher_chain,
    ("blockchain_com", "block_count"): blockchain_com_block_count,
    ("blockchain_com", "latest_block"): blockchain_com_latest_block,
    ("blockchain_com", "ticker"): blockchain_com_ticker,
    ("subscan", "metadata"): subscan_metadata,
    # rpc_nodes
    ("publicnode", "*"): jsonrpc,
    ("llamarpc", "*"): jsonrpc,
    ("infura", "*"): jsonrpc,
    ("alchemy", "*"): jsonrpc,
    ("drpc", "*"): jsonrpc,
    ("ankr", "*"): jsonrpc,
    ("solana_rpc", "*"): solana_rpc,
    ("trongrid", "now_block"): trongrid_now_block,
    # news
    ("cryptopanic", "posts"): cryptopanic_posts,
    ("newsapi", "everything"): newsapi_everything,
    ("newsapi", "top_headlines"): newsapi_top_headlines,
    ("cryptocompare_news", "latest"): cryptocompare_news,
    ("cryptocompare_news", "categories"): cryptocompare_news_categories,
    ("coindesk_news", "latest_articles"): coindesk_news,
    ("coinmarketcal", "events"): coinmarketcal_events,
    # sentiment
    ("alternative_me", "fear_greed"): alternative_me_fng,
    ("alternative_me", "btc_ticker"): alternative_me_ticker,
    ("cmc_fear_greed", "latest"): cmc_fear_greed,
    ("lunarcrush", "btc_coin"): lunarcrush_coin,
    ("santiment", "btc_price"): santiment_graphql,
    ("coinglass", "funding_rate"): coinglass_funding,
    ("binance_futures", "premium_index"): binance_premium_index,
    ("binance_futures", "long_short_ratio"): binance_long_short,
    ("binance_futures", "open_interest"): binance_open_interest,
    # onchain
    ("thegraph", "*"): graph_meta,
    ("defillama", "btc_price"): defillama_price,
    ("defillama", "eth_price"): defillama_price,
    ("defillama_tvl", "chains"): defillama_chains,
    ("defillama_tvl", "uniswap_tvl"): defillama_protocol_tvl,
    ("dune", "latest_result"): dune_results,
    ("glassnode", "btc_close"): glassnode_close,
    ("goldrush", "latest_block"): goldrush_block,
    ("moralis", "version"): moralis_version,
    ("moralis", "weth_price"): moralis_price,
    ("oneinch", "weth_price"): oneinch_price,
    ("zerox", "weth_usdc_price"): zerox_price,
    ("pyth", "btc_price"): pyth_latest,
    ("pyth", "eth_price"): pyth_latest,
    ("redstone", "btc_price"): redstone_prices,
    ("redstone", "eth_price"): redstone_prices,
    ("dia", "btc_quotation"): dia_quotation,
    ("dia", "eth_quotation"): dia_quotation,
}


def generator_for(provider: str, endpoint: str, request_body: Any) -> Generator:
    """The registered generator, else one guessed from the request shape, else generic."""
    found = PAYLOADS.get((provider, endpoint)) or PAYLOADS.get((provider, "*"))
    if found:
        return found
    if isinstance(request_body, dict):
        if "jsonrpc" in request_body or "method" in request_body:
            return jsonrpc
        if "_meta" in str(request_body.get("query", "")):
            return graph_meta
    return generic


# ---------------------------------------------------------------- error bodies

# kind: "rate_limit" | "auth" | "generic"; each style returns the provider's own body.
ErrorStyle = Callable[[str, Ctx], Any]


def _etherscan_error(kind: str, ctx: Ctx) -> Any:
    result = {
        "rate_limit": "Max rate limit reached, please use API Key for higher rate limit",
        "auth": "Invalid API Key",
        "generic": "Error! Missing Or invalid Action name",
    }[kind]
    return {"status": "0", "message": "NOTOK", "result": result}


def _cmc_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (1008, "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute."),
        "auth": (1001, "This API Key is invalid."),
        "generic": (400, 'Invalid value for "symbol"'),
    }[kind]
    status = _cmc_status(ctx, 0)
    status.update(error_code=code, error_message=message)
    return {"status": status}


def _cryptocompare_error(kind: str, ctx: Ctx) -> Any:
    type_, message = {
        "rate_limit": (99, "You are over your rate limit please upgrade your account!"),
        "auth": (1, "You are using an invalid api key, please check your api key."),
        "generic": (2, "fsym param is empty or null."),
    }[kind]
    return {"Response": "Error", "Message": message, "HasWarning": False, "Type": type_, "RateLimit": {}, "Data": {}}


def _coingecko_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (
            429,
            "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits.",
        ),
        "auth": (10002, "API Key Missing or invalid"),
        "generic": (400, "invalid parameter"),
    }[kind]
    return {"status": {"error_code": code, "error_message": message}}


def _binance_error(kind: str, ctx: Ctx) -> Any:
    return {
        "rate_limit": {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
        },
        "auth": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        "generic": {"code": -1121, "msg": "Invalid symbol."},
    }[kind]


def _bybit_error(kind: str, ctx: Ctx) -> Any:
    code, message = {"rate_limit": (10006, "Too many visits!"), "auth": (10003, "API key is invalid."), "generic": (10001, "params error")}[kind]
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": ms(ctx.now)}


def _okx_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": ("50011", "Too Many Requests"),
        "auth": ("50111", "Invalid OK-ACCESS-KEY"),
        "generic": ("51001", "Instrument ID does not exist"),
    }[kind]
    return {"code": code, "msg": message, "data": []}


def _kraken_error(kind: str, ctx: Ctx) -> Any:
    error = {"rate_limit": "EAPI:Rate limit exceeded", "auth": "EAPI:Invalid key", "generic": "EQuery:Unknown asset pair"}[kind]
    return {"error": [error]}


def _jsonrpc_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (-32005, "limit exceeded"),
        "auth": (-32600, "Must be authenticated!"),
        "generic": (-32000, "header not found"),
    }[kind]
    return {"jsonrpc": "2.0", "id": ctx.rpc_id, "error": {"code": code, "message": message}}


def _graphql_error(kind: str, ctx: Ctx) -> Any:
    message = {
        "rate_limit": "Too many requests, please try again later",
        "auth": "auth error: malformed API key",
        "generic": "bad indexers: BadResponse(indexer unavailable)",
    }[kind]
    return {"errors": [{"message": message}]}


def _newsapi_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": ("rateLimited", "You have made too many requests recently. Developer accounts are limited to 100 requests over a 24 hour period."),
        "auth": ("apiKeyInvalid", "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key."),
        "generic": ("unexpectedError", "This shouldn't happen, and if it does then it's our fault, not yours."),
    }[kind]
    return {"status": "error", "code": code, "message": message}


def _cryptopanic_error(kind: str, ctx: Ctx) -> Any:
    # CryptoPanic's list shape (count/next/previous/results) is Django REST framework's,
    # whose errors are {"detail": ...} next to 401/403/429 (clients read `detail`).
    detail = {
        "rate_limit": "Request was throttled. Expected available in 3600 seconds.",
        "auth": "Invalid token.",
        "generic": "Not found.",
    }[kind]
    return {"detail": detail}


def _alternative_me_error(kind: str, ctx: Ctx) -> Any:
    error = {"rate_limit": "Rate limit exceeded", "auth": "Unauthorized", "generic": "Internal error"}[kind]
    return {"name": "Fear and Greed Index", "data": [], "metadata": {"error": error}}


def _tron_error(kind: str, ctx: Ctx) -> Any:
    message = {
        "rate_limit": "request rate exceeded the allowed_rps(3), and the query server is suspended for 1s",
        "auth": "ApiKey not exists",
        "generic": "Internal error",
    }[kind]
    return {"Error": message}


def _blockchair_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (402, "Limit exceeded. Please get an API key at https://api.blockchair.com/premium"),
        "auth": (401, "Your API key is invalid"),
        "generic": (500, "Internal error"),
    }[kind]
    return {"data": None, "context": {"code": code, "error": message, "source": "A", "time": 0.001}}


def _generic_error(kind: str, ctx: Ctx) -> Any:
    message = {"rate_limit": "Too Many Requests", "auth": "Unauthorized: invalid API key", "generic": "Internal Server Error"}[kind]
    return {"error": message}


def _error_field(rate_limit: str, auth: str, generic: str) -> ErrorStyle:
    """{"error": "<text>"}: CoinPaprika, CoinCap, Messari, CoinAPI, Dune, BlockCypher..."""

    def style(kind: str, ctx: Ctx) -> Any:
        return {"error": {"rate_limit": rate_limit, "auth": auth, "generic": generic}[kind]}

    return style


def _message_field(rate_limit: str, auth: str, generic: str) -> ErrorStyle:
    """{"message": "<text>"}: Coinbase, Moralis..."""

    def style(kind: str, ctx: Ctx) -> Any:
        return {"message": {"rate_limit": rate_limit, "auth": auth, "generic": generic}[kind]}

    return style


def _livecoinwatch_error(kind: str, ctx: Ctx) -> Any:
    code, status, description = {
        "rate_limit": (429, "Too Many Requests", "Daily credit limit reached."),
        "auth": (401, "Unauthorized", "Invalid API key."),
        "generic": (400, "Bad Request", "Invalid coin code."),
    }[kind]
    return {"error": {"code": code, "status": status, "description": description}}


def _coinranking_error(kind: str, ctx: Ctx) -> Any:
    type_, message = {
        "rate_limit": ("RATE_LIMIT_EXCEEDED", "You have exceeded the rate limit. Please upgrade your plan."),
        "auth": ("API_KEY_INVALID", "The API key is invalid."),
        "generic": ("COIN_NOT_FOUND", "Coin not found"),
    }[kind]
    return {"status": "fail", "type": type_, "message": message}


def _coindesk_error(kind: str, ctx: Ctx) -> Any:
    type_, message = {
        "rate_limit": (99, "You are over your rate limit please upgrade your account!"),
        "auth": (1, "You need a valid auth key or api key to access this endpoint"),
        "generic": (2, "The instruments parameter is required."),
    }[kind]
    return {"Data": {}, "Err": {"type": type_, "message": message}}


def _bitfinex_error(kind: str, ctx: Ctx) -> Any:
    return {"rate_limit": ["error", 11010, "ratelimit: error"], "auth": ["error", 10100, "apikey: invalid"], "generic": ["error", 10020, "symbol: invalid"]}[
        kind
    ]


def _kucoin_error(kind: str, ctx: Ctx) -> Any:
    code, msg = {"rate_limit": ("429000", "Too Many Requests"), "auth": ("400003", "KC-API-KEY not exists"), "generic": ("400100", "Parameter Error")}[kind]
    return {"code": code, "msg": msg}


def _gate_error(kind: str, ctx: Ctx) -> Any:
    label, message = {
        "rate_limit": ("TOO_MANY_REQUESTS", "Request Rate limit Exceeded"),
        "auth": ("INVALID_KEY", "Invalid key provided"),
        "generic": ("INVALID_CURRENCY_PAIR", "Invalid currency pair"),
    }[kind]
    return {"label": label, "message": message}


def _bitstamp_error(kind: str, ctx: Ctx) -> Any:
    code, reason = {"rate_limit": ("400.002", "Rate limit exceeded"), "auth": ("API0001", "Invalid API key"), "generic": ("404.002", "Invalid currency pair")}[
        kind
    ]
    return {"status": "error", "reason": reason, "code": code}


def _gemini_error(kind: str, ctx: Ctx) -> Any:
    reason, message = {
        "rate_limit": ("RateLimited", "Requests were made too frequently. Please wait and try again."),
        "auth": ("InvalidApiKey", "Invalid API key"),
        "generic": ("InvalidSymbol", "Supplied value 'btcusdx' is not a valid symbol"),
    }[kind]
    return {"result": "error", "reason": reason, "message": message}


def _htx_error(kind: str, ctx: Ctx) -> Any:
    code, msg = {
        "rate_limit": ("too-many-requests", "Too many requests"),
        "auth": ("api-signature-not-valid", "Signature not valid"),
        "generic": ("invalid-parameter", "invalid symbol"),
    }[kind]
    return {"status": "error", "err-code": code, "err-msg": msg, "data": None}


def _mexc_error(kind: str, ctx: Ctx) -> Any:
    code, msg = {"rate_limit": (429, "Too Many Requests"), "auth": (700002, "Signature for this request is not valid."), "generic": (-1121, "Invalid symbol.")}[
        kind
    ]
    return {"code": code, "msg": msg}


def _deribit_error(kind: str, ctx: Ctx) -> Any:
    code, message = {"rate_limit": (10028, "too_many_requests"), "auth": (13009, "unauthorized"), "generic": (-32602, "Invalid params")}[kind]
    us = int(ctx.now * 1e6)
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "usIn": us, "usOut": us + 50, "usDiff": 50, "testnet": False}


def _bitget_error(kind: str, ctx: Ctx) -> Any:
    code, msg = {"rate_limit": ("429", "Too Many Requests"), "auth": ("40006", "Invalid ACCESS_KEY"), "generic": ("40034", "Parameter does not exist")}[kind]
    return {"code": code, "msg": msg, "requestTime": ms(ctx.now), "data": None}


def _cryptocom_error(kind: str, ctx: Ctx) -> Any:
    code, message = {"rate_limit": (42901, "TOO_MANY_REQUESTS"), "auth": (40101, "UNAUTHORIZED"), "generic": (10004, "BAD_REQUEST")}[kind]
    return {"id": -1, "method": "public/get-tickers", "code": code, "message": message}


def _bitmex_error(kind: str, ctx: Ctx) -> Any:
    name, message = {
        "rate_limit": ("RateLimitError", "Rate limit exceeded, retry in 1 seconds."),
        "auth": ("HTTPError", "Invalid API Key."),
        "generic": ("HTTPError", "The system is currently overloaded. Please try again later."),
    }[kind]
    return {"error": {"message": message, "name": name}}


def _solscan_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (1000, "Too many requests, rate limit exceeded"),
        "auth": (1100, "Unauthorized: invalid token"),
        "generic": (1200, "Invalid params"),
    }[kind]
    return {"success": False, "errors": {"code": code, "message": message}}


def _subscan_error(kind: str, ctx: Ctx) -> Any:
    if kind == "auth":
        return {"message": "Invalid authentication credentials"}
    code, message = {"rate_limit": (20008, "API rate limit exceeded"), "generic": (10001, "Params Error")}[kind]
    return {"code": code, "message": message, "generated_at": int(ctx.now), "data": None}


def _solana_error(kind: str, ctx: Ctx) -> Any:
    error = {
        "rate_limit": {"code": 429, "message": "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."},
        "auth": {"code": 403, "message": "Forbidden"},
        "generic": {"code": -32005, "message": "Node is behind by 142 slots", "data": {"numSlotsBehind": 142}},
    }[kind]
    return {"jsonrpc": "2.0", "error": error, "id": ctx.rpc_id}


def _santiment_error(kind: str, ctx: Ctx) -> Any:
    message = {
        "rate_limit": "API Rate Limit Reached. Try again in 32 seconds (1 minute)",
        "auth": "Unauthorized: the apikey is invalid",
        "generic": "The metric 'price_usd' is not supported or is mistyped.",
    }[kind]
    return {"errors": [{"message": message, "locations": [{"line": 1, "column": 3}], "path": ["getMetric"]}], "data": {"getMetric": None}}


def _coinglass_error(kind: str, ctx: Ctx) -> Any:
    code, msg = {
        "rate_limit": ("429", "Too Many Requests"),
        "auth": ("401", "API key missing or invalid"),
        "generic": ("400", "Missing or invalid parameters"),
    }[kind]
    return {"code": code, "msg": msg}


def _goldrush_error(kind: str, ctx: Ctx) -> Any:
    code, message = {
        "rate_limit": (429, "Rate limit exceeded: too many requests per second for your plan."),
        "auth": (401, "Invalid or missing API key (sign up at https://goldrush.dev/platform/apikey)."),
        "generic": (500, "Internal error. Try again later."),
    }[kind]
    return {"data": None, "error": True, "error_message": message, "error_code": code}


def _zerox_error(kind: str, ctx: Ctx) -> Any:
    name, message = {
        "rate_limit": ("RATE_LIMITED", "Too many requests"),
        "auth": ("UNAUTHORIZED", "Invalid API key"),
        "generic": ("INPUT_INVALID", "Validation Failed"),
    }[kind]
    return {"name": name, "message": message, "data": {"zid": "0x" + fake_hash("zid", int(ctx.now), size=12)}}


def _lunarcrush_error(kind: str, ctx: Ctx) -> Any:
    error = {
        "rate_limit": "Rate limit exceeded, please upgrade your subscription for higher limits",
        "auth": "Unauthorized: invalid API key",
        "generic": "Topic not found",
    }[kind]
    return {"error": error}


def _coinmarketcal_error(kind: str, ctx: Ctx) -> Any:
    code, message = {"rate_limit": (429, "Too many requests"), "auth": (401, "Invalid API key"), "generic": (400, "Invalid parameter")}[kind]
    return {"body": None, "status": {"error_code": code, "error_message": message}}


ERROR_STYLES: dict[str, ErrorStyle] = {
    # market_data
    "coingecko": _coingecko_error,
    "coinmarketcap": _cmc_error,
    "cryptocompare": _cryptocompare_error,
    "coinpaprika": _error_field("Too many requests", "Invalid API key", "id not found"),
    "coincap": _error_field("Too Many Requests: credit limit reached", "Invalid API key", "asset not found"),
    "messari": _error_field("rate limit exceeded", "invalid API key", "asset not found"),
    "coinlore": _generic_error,
    "livecoinwatch": _livecoinwatch_error,
    "coinranking": _coinranking_error,
    "coinapi": _error_field(
        "Too many requests - You have exceeded your API key rate limits or the concurrency limit.",
        "Invalid API key",
        "Unknown asset_id_base",
    ),
    "coindesk": _coindesk_error,
    # exchanges
    "binance": _binance_error,
    "bybit": _bybit_error,
    "okx": _okx_error,
    "kraken": _kraken_error,
    "coinbase": _message_field("Public rate limit exceeded", "Invalid API Key", "NotFound"),
    "bitfinex": _bitfinex_error,
    "kucoin": _kucoin_error,
    "gateio": _gate_error,
    "bitstamp": _bitstamp_error,
    "gemini": _gemini_error,
    "htx": _htx_error,
    "mexc": _mexc_error,
    "deribit": _deribit_error,
    "bitget": _bitget_error,
    "cryptocom": _cryptocom_error,
    "bitmex": _bitmex_error,
    # explorers
    "etherscan": _etherscan_error,
    "bscscan": _etherscan_error,
    "polygonscan": _etherscan_error,
    "arbiscan": _etherscan_error,
    "tronscan": _tron_error,
    "blockchair": _blockchair_error,
    "mempool_space": _generic_error,
    "blockstream": _generic_error,
    "solscan": _solscan_error,
    "blockcypher": _error_field("Limits reached.", "Invalid token.", "Unable to find block."),
    "blockchain_com": _generic_error,
    "subscan": _subscan_error,
    # rpc_nodes
    "publicnode": _jsonrpc_error,
    "llamarpc": _jsonrpc_error,
    "infura": _jsonrpc_error,
    "alchemy": _jsonrpc_error,
    "drpc": _jsonrpc_error,
    "ankr": _jsonrpc_error,
    "solana_rpc": _solana_error,
    "trongrid": _tron_error,
    # news
    "cryptopanic": _cryptopanic_error,
    "newsapi": _newsapi_error,
    "cryptocompare_news": _cryptocompare_error,
    "coindesk_news": _coindesk_error,
    "coinmarketcal": _coinmarketcal_error,
    # sentiment
    "alternative_me": _alternative_me_error,
    "cmc_fear_greed": _cmc_error,
    "lunarcrush": _lunarcrush_error,
    "santiment": _santiment_error,
    "coinglass": _coinglass_error,
    "binance_futures": _binance_error,
    # onchain
    "thegraph": _graphql_error,
    "defillama": _generic_error,
    "defillama_tvl": _generic_error,
    "dune": _error_field("Too many requests, rate limit exceeded", "invalid API Key", "Query not found"),
    "glassnode": _generic_error,
    "goldrush": _goldrush_error,
    "moralis": _message_field("Rate limit exceeded.", "Invalid API key", "No pools found with enough liquidity to calculate the price"),
    "oneinch": _error_field("Too Many Requests", "Unauthorized", "Internal Server Error"),
    "zerox": _zerox_error,
    "pyth": _generic_error,
    "redstone": _generic_error,
    "dia": _generic_error,
}

# HTTP status each provider answers a bad or missing key with: the Etherscan family and
# CryptoCompare report it in an HTTP 200 body; the others use 401.
AUTH_STATUS: dict[str, int] = {
    "etherscan": 200,
    "bscscan": 200,
    "polygonscan": 200,
    "arbiscan": 200,
    "cryptocompare": 200,
    "cryptocompare_news": 200,
}


def error_body(provider: str, kind: str, ctx: Ctx) -> Any:
    style = ERROR_STYLES.get(provider)
    if style is None:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        style = _jsonrpc_error if "jsonrpc" in body else _graphql_error if "query" in body else _generic_error
    return style(kind, ctx)
