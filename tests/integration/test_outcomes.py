"""Every outcome of DESIGN.md, driven through the simulator, with the exact samples.

Real HTTP on loopback: the simulator serves the shipped providers' payloads and the
faults; the exporter probes, and the test reads /metrics as Prometheus would."""

from __future__ import annotations

import time

import pytest
import structlog
from aiohttp import web

from exporter.model import Outcome, ProbeKind, ProbeResult, RetryReason
from exporter.probes import KINDS, Kind, ProbeContext, ProbeSpec
from exporter.ratelimit import PAUSE_MARGIN

from .conftest import BAD_KEY, TEST_TIMEOUT, Harness


def ep_labels(provider: str, category: str, endpoint: str) -> dict[str, str]:
    return {"provider": provider, "category": category, "endpoint": endpoint}


async def test_success_exposes_up_values_and_quota(harness: Harness) -> None:
    r = await harness.probe("binance", "btc_ticker")
    assert r.outcome is Outcome.SUCCESS
    labels = ep_labels("binance", "exchanges", "btc_ticker")
    assert await harness.sample("crypto_api_up", **labels) == 1
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="success") == 1
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="server_error") == 0
    assert await harness.sample("crypto_api_http_responses_total", provider="binance", endpoint="btc_ticker", code="200") == 1
    assert await harness.sample("crypto_api_probe_duration_seconds_count", **labels) == 1
    price = await harness.sample("crypto_api_value", provider="binance", endpoint="btc_ticker", name="btc_usd")
    assert price is not None and 10_000 < price < 1_000_000
    assert await harness.sample("crypto_api_rate_limit_limit", provider="binance", scope="weight_1m") == 6000
    remaining = await harness.sample("crypto_api_rate_limit_remaining", provider="binance", scope="weight_1m")
    assert remaining is not None and remaining < 6000
    assert await harness.sample("crypto_api_provider_status", provider="binance", category="exchanges", status="online") == 1


async def test_503_is_server_error_after_backoff_retries(harness: Harness) -> None:
    await harness.fault(provider="binance", status=503)
    r = await harness.probe("binance", "ping")
    assert (r.outcome, r.attempts, r.status_code) == (Outcome.SERVER_ERROR, 3, 503)
    labels = ep_labels("binance", "exchanges", "ping")
    assert await harness.sample("crypto_api_up", **labels) == 0
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="server_error") == 1
    assert await harness.sample("crypto_api_http_responses_total", provider="binance", endpoint="ping", code="503") == 3
    assert await harness.sample("crypto_api_retries_total", provider="binance", endpoint="ping", reason="server_error") == 2
    assert harness.sim.request_count("binance", "ping") == 3


async def test_http_200_rate_limit_body_is_rate_limited_and_pauses(harness: Harness) -> None:
    await harness.fault(provider="etherscan", endpoint="gas_oracle", body_error="rate_limit")
    before = time.time()
    r = await harness.probe("etherscan", "gas_oracle")
    assert (r.outcome, r.status_code, r.attempts) == (Outcome.RATE_LIMITED, 200, 1)
    assert r.pause_until is not None and r.pause_until >= before + PAUSE_MARGIN
    labels = ep_labels("etherscan", "explorers", "gas_oracle")
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="rate_limited") == 1
    assert await harness.sample("crypto_api_up", **labels) == 0
    assert await harness.sample("crypto_api_http_responses_total", provider="etherscan", endpoint="gas_oracle", code="200") == 1


async def test_429_with_retry_after_is_not_retried(harness: Harness) -> None:
    await harness.fault(provider="coingecko", rate_limit={"retry_after": 30})
    before = time.time()
    r = await harness.probe("coingecko", "btc_price")
    assert (r.outcome, r.status_code, r.attempts, r.retries) == (Outcome.RATE_LIMITED, 429, 1, ())
    assert r.pause_until is not None
    assert before + 30 + PAUSE_MARGIN - 1 <= r.pause_until <= time.time() + 30 + PAUSE_MARGIN + 1
    assert harness.sim.request_count("coingecko", "btc_price") == 1


async def test_stale_timestamp_is_stale_with_age_above_bound(harness: Harness) -> None:
    await harness.fault(provider="coingecko", endpoint="btc_price", stale_seconds=3600)
    r = await harness.probe("coingecko", "btc_price")
    assert r.outcome is Outcome.STALE
    labels = ep_labels("coingecko", "market_data", "btc_price")
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="stale") == 1
    assert await harness.sample("crypto_api_up", **labels) == 0
    age = await harness.sample("crypto_api_data_age_seconds", provider="coingecko", endpoint="btc_price")
    bound = await harness.sample("crypto_api_data_max_age_seconds", provider="coingecko", endpoint="btc_price")
    assert age is not None and bound is not None
    assert age > bound and age >= 3600
    assert await harness.sample("crypto_api_provider_status", provider="coingecko", category="market_data", status="degraded") == 1


async def test_hang_is_timeout_within_timeout_plus_retries(harness: Harness) -> None:
    await harness.fault(provider="okx", endpoint="server_time", hang=True)
    started = time.monotonic()
    r = await harness.probe("okx", "server_time")
    elapsed = time.monotonic() - started
    budget = TEST_TIMEOUT * (1 + 1.5 + 2.25)
    assert r.outcome is Outcome.TIMEOUT
    assert r.attempts == 3 and r.retries == (RetryReason.TIMEOUT, RetryReason.TIMEOUT)
    assert budget - 0.1 <= elapsed <= budget + 1.5
    labels = ep_labels("okx", "exchanges", "server_time")
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="timeout") == 1
    assert await harness.sample("crypto_api_retries_total", provider="okx", endpoint="server_time", reason="timeout") == 2
    assert await harness.sample("crypto_api_up", **labels) == 0


async def test_disconnect_is_connection_error(harness: Harness) -> None:
    await harness.fault(provider="kraken", endpoint="system_status", disconnect=True)
    r = await harness.probe("kraken", "system_status")
    assert r.outcome is Outcome.CONNECTION_ERROR and r.status_code is None
    assert await harness.sample("crypto_api_probes_total", **ep_labels("kraken", "exchanges", "system_status"), outcome="connection_error") == 1


async def test_invalid_key_rotates_to_the_next_key(harness: Harness) -> None:
    await harness.fault(provider="etherscan", invalid_keys=[BAD_KEY])
    r = await harness.probe("etherscan", "gas_oracle")
    assert r.outcome is Outcome.SUCCESS
    assert r.key_env == "ETHERSCAN_API_KEY_2" and r.retries == (RetryReason.KEY_ROTATION,)
    assert await harness.sample("crypto_api_key_valid", provider="etherscan", key="ETHERSCAN_API_KEY_1") == 0
    assert await harness.sample("crypto_api_key_valid", provider="etherscan", key="ETHERSCAN_API_KEY_2") == 1
    assert await harness.sample("crypto_api_retries_total", provider="etherscan", endpoint="gas_oracle", reason="key_rotation") == 1
    # The next probe goes straight to the good key.
    r = await harness.probe("etherscan", "block_number")
    assert r.attempts == 1 and r.key_env == "ETHERSCAN_API_KEY_2"


async def test_every_key_rejected_is_auth_error(harness: Harness) -> None:
    await harness.fault(provider="coinmarketcap", invalid_keys="all")
    r = await harness.probe("coinmarketcap", "btc_quote")
    assert r.outcome is Outcome.AUTH_ERROR and r.attempts == 2
    assert await harness.sample("crypto_api_probes_total", **ep_labels("coinmarketcap", "market_data", "btc_quote"), outcome="auth_error") == 1
    for key in ("CMC_API_KEY", "CMC_API_KEY_2"):
        assert await harness.sample("crypto_api_key_valid", provider="coinmarketcap", key=key) == 0


async def test_404_is_client_error(harness: Harness) -> None:
    await harness.fault(provider="coinpaprika", endpoint="global", status=404)
    r = await harness.probe("coinpaprika", "global")
    assert (r.outcome, r.status_code, r.attempts) == (Outcome.CLIENT_ERROR, 404, 1)
    assert await harness.sample("crypto_api_http_responses_total", provider="coinpaprika", endpoint="global", code="404") == 1


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        ({"garbage": True}, "not JSON"),
        ({"truncated": True}, "not JSON"),
        ({"oversized_bytes": 2_000_000}, "body larger than 1048576 bytes"),
        ({"oversized_bytes": 20_000_000}, "body larger than 1048576 bytes"),
        ({"body_error": "generic"}, "body matched error rule"),
        ({"gzip_bomb": True}, "body larger than 1048576 bytes"),  # 1 MB on the wire, 1,000 MiB inflated
        ({"deep_json": True}, "nested deeper than 1024 levels"),  # 100,000 levels: a RecursionError before
    ],
    ids=["garbage", "truncated", "oversized", "oversized_20mb", "body_error", "gzip_bomb", "deep_json"],
)
async def test_bad_bodies_are_bad_payload(harness: Harness, fault: dict, detail: str) -> None:
    await harness.fault(provider="okx", endpoint="btc_ticker", **fault)
    r = await harness.probe("okx", "btc_ticker")
    assert r.outcome is Outcome.BAD_PAYLOAD, r.detail
    assert r.detail.startswith(detail), r.detail
    labels = ep_labels("okx", "exchanges", "btc_ticker")
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="bad_payload") == 1
    assert await harness.sample("crypto_api_value", provider="okx", endpoint="btc_ticker", name="btc_usd") is None


async def test_failures_open_the_circuit_and_skip_requests(harness: Harness) -> None:
    threshold = harness.exporter.config.provider("bybit").circuit_breaker.failure_threshold
    await harness.fault(provider="bybit", status=502)
    for _ in range(threshold):
        r = await harness.probe("bybit", "server_time")
    assert r.outcome is Outcome.SERVER_ERROR
    assert await harness.sample("crypto_api_circuit_breaker_state", provider="bybit", state="open") == 1
    sent = harness.sim.request_count("bybit")
    r = await harness.probe("bybit", "btc_ticker")
    assert r.outcome is Outcome.CIRCUIT_OPEN and r.attempts == 0
    assert harness.sim.request_count("bybit") == sent
    assert await harness.sample("crypto_api_probes_total", **ep_labels("bybit", "exchanges", "btc_ticker"), outcome="circuit_open") == 1
    assert await harness.sample("crypto_api_provider_status", provider="bybit", category="exchanges", status="offline") == 1


async def test_spent_budget_skips_probes(harness: Harness) -> None:
    budget = harness.exporter.config.provider("newsapi").budget
    assert budget is not None
    for _ in range(budget.requests):
        r = await harness.probe("newsapi", "everything")
        assert r.outcome is Outcome.SUCCESS
    r = await harness.probe("newsapi", "everything")
    assert r.outcome is Outcome.BUDGET_EXHAUSTED and r.attempts == 0
    assert harness.sim.request_count("newsapi") == budget.requests
    assert await harness.sample("crypto_api_rate_limit_remaining", provider="newsapi", scope="budget") == 0
    assert await harness.sample("crypto_api_rate_limit_limit", provider="newsapi", scope="budget") == budget.requests
    labels = ep_labels("newsapi", "news", "everything")
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="budget_exhausted") == 1
    assert await harness.sample("crypto_api_up", **labels) == 1


async def test_count_limited_fault_then_recovery(harness: Harness) -> None:
    await harness.fault(provider="alternative_me", status=500, count=1)
    r = await harness.probe("alternative_me", "fear_greed")
    assert r.outcome is Outcome.SUCCESS and r.attempts == 2
    assert await harness.sample("crypto_api_retries_total", provider="alternative_me", endpoint="fear_greed", reason="server_error") == 1
    index = await harness.sample("crypto_api_value", provider="alternative_me", endpoint="fear_greed", name="fear_greed_index")
    assert index is not None and 0 <= index <= 100


async def test_a_probe_kind_that_raises_still_ends_in_one_outcome(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN.md: every probe ends in exactly one outcome; nothing raises into the
    scheduler. A kind's bug becomes a published bad_payload and one redacted error log."""

    async def crash(ctx: ProbeContext, spec: ProbeSpec) -> ProbeResult:
        raise RuntimeError(f"cannot handle https://api.example/?apikey={BAD_KEY}")

    monkeypatch.setitem(KINDS, ProbeKind.HTTP, Kind(crash))  # type: ignore[index]
    with structlog.testing.capture_logs() as logs:
        r = await harness.probe("etherscan", "gas_oracle")
    assert r.outcome is Outcome.BAD_PAYLOAD and r.attempts == 0
    assert r.detail == "the probe failed inside the exporter (RuntimeError); see the log event probe_crashed"
    labels = ep_labels("etherscan", "explorers", "gas_oracle")
    assert await harness.sample("crypto_api_up", **labels) == 0
    assert await harness.sample("crypto_api_probes_total", **labels, outcome="bad_payload") == 1
    crashes = [e for e in logs if e["event"] == "probe_crashed"]
    assert len(crashes) == 1 and crashes[0]["log_level"] == "error"
    assert "RuntimeError: cannot handle https://api.example/?apikey=***" in crashes[0]["traceback"]
    assert BAD_KEY not in repr(logs)


async def test_body_at_one_byte_a_second_is_a_timeout(harness: Harness) -> None:
    """Headers at once, then a byte a second: each attempt ends at its timeout, as a hang does."""
    await harness.fault(provider="okx", endpoint="server_time", slow_body=True)
    started = time.monotonic()
    r = await harness.probe("okx", "server_time")
    elapsed = time.monotonic() - started
    assert r.outcome is Outcome.TIMEOUT and r.attempts == 3
    budget = TEST_TIMEOUT * (1 + 1.5 + 2.25)
    assert budget - 0.1 <= elapsed <= budget + 1.5


class Recorder:
    """A tiny aiohttp app on another loopback port: what a redirect to another origin
    would reach. It notes every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path_qs, dict(request.headers)))
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": "0x10", "status": {"error_code": 0}})

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.mark.parametrize(
    ("provider", "endpoint", "key_env"),
    [("coinmarketcap", "btc_quote", "CMC_API_KEY"), ("etherscan", "gas_oracle", "ETHERSCAN_API_KEY_1"), ("infura", "block_number", "INFURA_API_KEY")],
    ids=["header_key", "query_key", "path_key"],
)
async def test_redirect_to_another_origin_never_carries_the_key(harness: Harness, provider: str, endpoint: str, key_env: str) -> None:
    """A provider that moved its API host answers 302 to it, path and query kept. The
    exporter does not follow: the other server gets nothing, not even a key-less request."""
    key = next(k.value for k in harness.exporter.config.provider(provider).auth.keys if k.env == key_env)
    async with Recorder() as elsewhere:
        await harness.fault(provider=provider, endpoint=endpoint, redirect=elsewhere.url)
        r = await harness.probe(provider, endpoint)
    assert elsewhere.seen == []
    assert (r.outcome, r.status_code, r.attempts, r.key_env) == (Outcome.BAD_PAYLOAD, 302, 1, key_env)
    assert r.detail.startswith(f"redirected to another origin ({elsewhere.url}); not followed")
    assert key not in r.detail
    # The key was neither blamed for the move nor proven by it.
    assert r.key_checks == ()
    assert await harness.sample("crypto_api_key_valid", provider=provider, key=key_env) != 0
    labels = ep_labels(provider, harness.exporter.config.provider(provider).category.value, endpoint)
    assert await harness.sample("crypto_api_up", **labels) == 0
    assert await harness.sample("crypto_api_http_responses_total", provider=provider, endpoint=endpoint, code="302") == 1


async def test_redirect_within_the_origin_is_followed_with_the_key(harness: Harness) -> None:
    # Once to the simulator itself (same host and port), then the normal answer, which
    # the simulator gives only with the key in the header.
    await harness.fault(provider="coinmarketcap", endpoint="btc_quote", redirect=harness.sim.url, count=1)
    r = await harness.probe("coinmarketcap", "btc_quote")
    assert (r.outcome, r.status_code, r.attempts) == (Outcome.SUCCESS, 200, 1), r.detail
    assert harness.sim.request_count("coinmarketcap", "btc_quote") == 2
