"""The prober against aioresponses: classification, retry policy, keys, budget, breaker.

Mocks are fine here (unit tests of the prober); integration tests use the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from exporter.config import Config, parse_config, parse_duration
from exporter.model import CircuitState, KeyCheck, Outcome, RetryReason
from exporter.probes import ProbeContext, ProbeSpec
from exporter.probes.http import probe
from exporter.ratelimit import PAUSE_MARGIN
from exporter.redact import Redactor
from exporter.runtime import ProviderRuntime
from exporter.simulator import hostile

from . import aioresponses_compat

aioresponses_compat.patch()

URL = re.compile(r"^https://api\.example\.test/.*$")
SECRET_1, SECRET_2 = "canary-key-one-1234", "canary-key-two-5678"


def make_config(**endpoint: object) -> Config:
    data = {
        "providers": [
            {
                "name": "etherscan",
                "category": "explorers",
                "base_url": "https://api.example.test/v2/api",
                "auth": {"type": "query", "name": "apikey", "env": ["K_1", "K_2"]},
                "circuit_breaker": {"failure_threshold": 2, "reset_timeout": "1m"},
                "rate_limit": {
                    "headers": [{"scope": "minute", "limit": "X-RateLimit-Limit", "remaining": "X-RateLimit-Remaining", "reset": "X-RateLimit-Reset"}],
                },
                "endpoints": [
                    {
                        "name": "gas",
                        "interval": "1m",
                        "timeout": "2s",
                        "error_rules": [
                            {"when": "status == '0' && contains(result, 'rate limit')", "outcome": "rate_limited"},
                            {"when": "status == '0' && contains(result, 'Invalid API Key')", "outcome": "auth_error"},
                        ],
                        **endpoint,
                    }
                ],
            }
        ]
    }
    return parse_config(data, env={"K_1": SECRET_1, "K_2": SECRET_2})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0
        self.slept: list[float] = []

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> aioresponses:
    with aioresponses() as m:
        yield m


async def run(session: aiohttp.ClientSession, clock: FakeClock, config: Config, guards: ProviderRuntime | None = None):
    provider = config.providers[0]
    guards = guards or ProviderRuntime.fresh(provider)
    ctx = ProbeContext(session=session, redactor=Redactor(config.secrets()), wall=clock.wall, monotonic=clock.monotonic, sleep=clock.sleep)
    return await probe(ctx, ProbeSpec(provider, provider.endpoints[0], guards)), guards


def sent_keys(mocked: aioresponses) -> list[str | None]:
    """The apikey query parameter of each request, in the order first seen."""
    return [url.query.get("apikey") for (_, url), calls in mocked.requests.items() for _ in calls]


def timeouts_used(mocked: aioresponses) -> list[float]:
    return [call.kwargs["timeout"].total for calls in mocked.requests.values() for call in calls]


async def test_success_reads_quota_headers(session, clock, mocked) -> None:
    mocked.get(URL, payload={"status": "1", "result": {}}, headers={"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "30"})
    result, _ = await run(session, clock, make_config())
    assert result.outcome is Outcome.SUCCESS
    assert (result.attempts, result.http_codes, result.retries) == (1, (200,), ())
    assert result.key_env == "K_1" and result.key_checks == (KeyCheck("K_1", True),)
    assert [(q.scope, q.limit, q.remaining, q.reset_at) for q in result.quotas] == [("minute", 5, 4, clock.now + 30)]
    assert sent_keys(mocked) == [SECRET_1]


async def test_timeout_retries_twice_with_growing_timeouts(session, clock, mocked) -> None:
    mocked.get(URL, exception=TimeoutError(), repeat=True)
    result, _ = await run(session, clock, make_config())
    assert result.outcome is Outcome.TIMEOUT
    assert result.attempts == 3
    assert result.retries == (RetryReason.TIMEOUT, RetryReason.TIMEOUT)
    assert timeouts_used(mocked) == [2.0, 3.0, 4.5]
    assert result.duration is None and result.http_codes == ()


def hang(clock: FakeClock):  # type: ignore[no-untyped-def]
    """A request that waits out its whole timeout, on the fake clock."""

    def callback(url, **kwargs):  # type: ignore[no-untyped-def]
        clock.now += kwargs["timeout"].total
        raise TimeoutError()

    return callback


@pytest.mark.parametrize(
    ("interval", "timeout", "timeouts"),
    [
        ("1m", "2s", [2.0, 3.0, 4.5]),  # 9.5 s in all: three attempts fit in a minute
        ("6s", "2s", [2.0, 3.0]),  # 2 + 3 < 6, then 5 + 4.5 > 6: one retry
        ("5s", "2s", [2.0]),  # 2 + 3 is not shorter than 5: none
        ("1m", "20s", [20.0, 30.0]),  # 20 + 30 < 60, then 50 + 45 > 60
        ("1m", "30s", [30.0]),  # the case: 30 + 45 (+ 67.5) used to run 142.5 s
    ],
)
async def test_timeout_retries_end_within_the_interval(session, clock, mocked, interval: str, timeout: str, timeouts: list[float]) -> None:
    mocked.get(URL, callback=hang(clock), repeat=True)
    result, _ = await run(session, clock, make_config(interval=interval, timeout=timeout))
    assert result.outcome is Outcome.TIMEOUT
    assert timeouts_used(mocked) == timeouts
    assert result.retries == (RetryReason.TIMEOUT,) * (len(timeouts) - 1)
    assert result.finished_at - result.started_at == pytest.approx(sum(timeouts))
    assert result.finished_at - result.started_at < parse_duration(interval)


async def test_timeout_then_success(session, clock, mocked) -> None:
    mocked.get(URL, exception=TimeoutError())
    mocked.get(URL, payload={"status": "1"})
    result, _ = await run(session, clock, make_config())
    assert (result.outcome, result.attempts, result.retries) == (Outcome.SUCCESS, 2, (RetryReason.TIMEOUT,))
    assert timeouts_used(mocked) == [2.0, 3.0]


async def test_server_error_backs_off_exponentially(session, clock, mocked) -> None:
    mocked.get(URL, status=503, body="busy", repeat=True)
    result, _ = await run(session, clock, make_config())
    assert result.outcome is Outcome.SERVER_ERROR
    assert result.attempts == 3 and result.http_codes == (503, 503, 503)
    assert clock.slept == [0.5, 1.0]
    assert result.retries == (RetryReason.SERVER_ERROR, RetryReason.SERVER_ERROR)


async def test_server_error_backoff_stays_within_the_interval(session, clock, mocked) -> None:
    mocked.get(URL, status=500, repeat=True)
    result, _ = await run(session, clock, make_config(interval="3s", timeout="2s"))
    # 0.5 s backoff + 2 s timeout fits in 3 s once; the next (1 s) would not.
    assert result.attempts == 2 and clock.slept == [0.5]


async def test_rate_limited_is_not_retried_and_pauses_until_reset(session, clock, mocked) -> None:
    mocked.get(URL, status=429, headers={"Retry-After": "20"}, repeat=True)
    result, _ = await run(session, clock, make_config())
    assert (result.outcome, result.attempts, result.retries) == (Outcome.RATE_LIMITED, 1, ())
    assert result.pause_until == clock.now + 20 + PAUSE_MARGIN


async def test_http_200_rate_limit_body_is_rate_limited(session, clock, mocked) -> None:
    mocked.get(URL, payload={"status": "0", "message": "NOTOK", "result": "Max rate limit reached"})
    result, _ = await run(session, clock, make_config())
    assert result.outcome is Outcome.RATE_LIMITED and result.status_code == 200 and result.attempts == 1


async def test_invalid_key_rotates_to_the_next_key(session, clock, mocked) -> None:
    mocked.get(URL, payload={"status": "0", "message": "NOTOK", "result": "Invalid API Key"})
    mocked.get(URL, payload={"status": "1"})
    result, guards = await run(session, clock, make_config())
    assert result.outcome is Outcome.SUCCESS
    assert result.attempts == 2 and result.retries == (RetryReason.KEY_ROTATION,)
    assert result.key_env == "K_2"
    assert result.key_checks == (KeyCheck("K_1", False), KeyCheck("K_2", True))
    assert guards.keys.validity() == {"K_1": False, "K_2": True}
    assert sent_keys(mocked) == [SECRET_1, SECRET_2]


async def test_a_rejected_key_is_retested_after_its_rest_and_comes_back(session, clock, mocked) -> None:
    """The key ring's default rest is 15 minutes: the first probe after it tries the
    rejected key once; the provider accepting it makes it valid again, no restart."""
    mocked.get(URL, payload={"status": "0", "message": "NOTOK", "result": "Invalid API Key"})
    mocked.get(URL, payload={"status": "1"}, repeat=True)
    _, guards = await run(session, clock, make_config())
    assert guards.keys.validity() == {"K_1": False, "K_2": True}
    clock.now += 899.0
    await run(session, clock, make_config(), guards)
    assert sent_keys(mocked).count(SECRET_1) == 1  # still resting: not sent again
    clock.now += 1.0
    result, _ = await run(session, clock, make_config(), guards)
    assert result.key_env == "K_1" and result.outcome is Outcome.SUCCESS  # the trial, accepted
    assert sent_keys(mocked).count(SECRET_1) == 2
    assert guards.keys.validity() == {"K_1": True, "K_2": True}


async def test_all_keys_rejected_is_auth_error_without_endless_retries(session, clock, mocked) -> None:
    mocked.get(URL, status=401, repeat=True)
    result, guards = await run(session, clock, make_config())
    assert result.outcome is Outcome.AUTH_ERROR and result.attempts == 2
    assert guards.keys.validity() == {"K_1": False, "K_2": False}
    assert SECRET_1 not in result.detail and SECRET_2 not in result.detail


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [
        ({"status": 404}, Outcome.CLIENT_ERROR),
        ({"status": 403}, Outcome.AUTH_ERROR),
        ({"status": 200, "body": "<html>oops</html>"}, Outcome.BAD_PAYLOAD),
        ({"status": 200, "body": '{"status": "1", "resu'}, Outcome.BAD_PAYLOAD),
        ({"status": 200, "body": "x" * 5000}, Outcome.BAD_PAYLOAD),
        ({"exception": aiohttp.ClientConnectionError("refused")}, Outcome.CONNECTION_ERROR),
    ],
)
async def test_outcomes(session, clock, mocked, kwargs: dict, outcome: Outcome) -> None:
    mocked.get(URL, repeat=True, **kwargs)
    result, _ = await run(session, clock, make_config(max_body_bytes=4096))
    assert result.outcome is outcome


async def test_oversized_body_is_named(session, clock, mocked) -> None:
    mocked.get(URL, body="x" * 5000)
    result, _ = await run(session, clock, make_config(max_body_bytes=4096))
    assert result.detail == "body larger than 4096 bytes"


async def test_breaker_opens_and_skips_requests(session, clock, mocked) -> None:
    config = make_config()
    mocked.get(URL, status=502, repeat=True)
    guards = None
    for _ in range(2):
        result, guards = await run(session, clock, config, guards)
    assert result.circuit_state is CircuitState.OPEN
    calls_before = sum(len(c) for c in mocked.requests.values())
    result, _ = await run(session, clock, config, guards)
    assert result.outcome is Outcome.CIRCUIT_OPEN and result.attempts == 0
    assert sum(len(c) for c in mocked.requests.values()) == calls_before


async def test_budget_counts_every_request_and_skips_when_spent(session, clock, mocked) -> None:
    data_budget = make_config()
    provider = data_budget.providers[0]
    from dataclasses import replace

    from exporter.config import Budget

    config = data_budget.with_providers((replace(provider, budget=Budget(requests=2, per=3600)),))
    mocked.get(URL, exception=TimeoutError(), repeat=True)
    result, guards = await run(session, clock, config)
    # Two requests allowed: the third timeout retry is not sent.
    assert result.outcome is Outcome.TIMEOUT and result.attempts == 2
    assert [(q.scope, q.remaining) for q in result.quotas] == [("budget", 0)]
    result, _ = await run(session, clock, config, guards)
    assert result.outcome is Outcome.BUDGET_EXHAUSTED and result.attempts == 0


async def test_exception_text_with_key_is_redacted(session, clock, mocked) -> None:
    mocked.get(URL, exception=aiohttp.ClientConnectionError(f"failed for https://x/?apikey={SECRET_1}"))
    result, _ = await run(session, clock, make_config())
    assert result.outcome is Outcome.CONNECTION_ERROR
    assert SECRET_1 not in result.detail


def test_request_cache_reuses_and_rebuilds_after_reload() -> None:
    from exporter.probes.request import RequestCache

    config = make_config(params={"module": "gastracker", "action": "gas oracle"})
    provider = config.providers[0]
    ep = provider.endpoints[0]
    k1, k2 = provider.auth.keys
    cache = RequestCache()
    first = cache.get(provider, ep, k1)
    assert cache.get(provider, ep, k1) is first
    assert str(first.url) == f"https://api.example.test/v2/api?module=gastracker&action=gas+oracle&apikey={SECRET_1}"
    assert cache.get(provider, ep, k2).url.query["apikey"] == SECRET_2
    reloaded = make_config(params={"module": "stats"}).providers[0]
    assert cache.get(reloaded, reloaded.endpoints[0], k1).url.query["module"] == "stats"


def test_payload_checks_leave_no_cyclic_garbage() -> None:
    """Cyclic garbage means collector pauses inside probe latencies (see app.GC_YOUNG_THRESHOLD)."""
    import gc

    from exporter.classify import check_payload

    ep = make_config(assertions=["result"], values=[{"name": "v", "path": "result.n"}]).providers[0].endpoints[0]
    body = b'{"status": "1", "result": {"n": "12.5"}}'
    check_payload(body, ep, 0.0)
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            check_payload(body, ep, 0.0)
        assert gc.collect() == 0
    finally:
        gc.enable()


# ---------------------------------------------------------------- hostile answers on real loopback servers (issue 9)

MIB = 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]


@pytest.fixture
async def loopback() -> AsyncIterator[Serve]:
    """Start tiny aiohttp apps on free loopback ports, each answering every path with one
    handler; all stopped after the test."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield serve
    for runner in runners:
        await runner.cleanup()


def loopback_config(base_url: str, auth: dict[str, Any] | None = None, **endpoint: object) -> Config:
    provider: dict[str, Any] = {
        "name": "hostile",
        "category": "market_data",
        "base_url": base_url,
        "endpoints": [{"name": "e", "interval": "1m", "timeout": "2s", **endpoint}],
    }
    if auth is not None:
        provider["auth"] = auth
    return parse_config({"providers": [provider]}, env={"K_1": SECRET_1, "K_2": SECRET_2})


async def probe_real(session: aiohttp.ClientSession, config: Config):  # type: ignore[no-untyped-def]
    """One probe on real clocks (timeouts and retries are the point of these tests)."""
    provider = config.providers[0]
    ctx = ProbeContext(session=session, redactor=Redactor(config.secrets()))
    return await probe(ctx, ProbeSpec(provider, provider.endpoints[0], ProviderRuntime.fresh(provider)))


def gzip_block() -> bytes:
    """One MiB of zeros deflated with a full flush: repeatable forever in one stream."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflate.compress(bytes(MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)


async def test_gzip_bomb_is_capped_on_decoded_bytes(session, loopback: Serve) -> None:
    """64 MiB of zeros in 66 KB of gzip: Content-Length is far under the 1 MiB cap, so a
    cap that trusts it inflates everything. The cap holds on decoded bytes instead."""
    bomb = hostile.gzip_bomb(64 * MIB)
    assert len(bomb) < 100_000

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    url = await loopback(handler)
    tracemalloc.start()
    try:
        result = await probe_real(session, loopback_config(url))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.outcome, result.status_code, result.attempts) == (Outcome.BAD_PAYLOAD, 200, 1)
    assert result.detail == "body larger than 1048576 bytes"
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB allocated while probing"


async def test_endless_gzip_stream_stops_at_the_cap(session, loopback: Serve) -> None:
    """A compressed body without end and without Content-Length: the probe ends in
    bad_payload (not a timeout) only if reading stops at the cap."""
    block = gzip_block()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client hangs up: the end of this answer
            await resp.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
            while True:
                await resp.write(block)
        return resp

    url = await loopback(handler)
    started = time.monotonic()
    result = await probe_real(session, loopback_config(url, max_body_bytes=4 * MIB))
    assert result.outcome is Outcome.BAD_PAYLOAD and result.detail == f"body larger than {4 * MIB} bytes"
    assert time.monotonic() - started < 2.0  # the endpoint's timeout: it did not run into it


@pytest.mark.parametrize("framing", ["content_length", "chunked", "gzip"])
async def test_body_sent_one_byte_per_second_is_a_timeout_within_the_timeout(session, loopback: Serve, framing: str) -> None:
    """aiohttp's total timeout, as the probe passes it, covers reading the body and not
    only the headers: whether the body is read whole (Content-Length) or streamed."""
    body = b'{"status": "1", "result": "' + b"x" * 100 + b'"}'
    sent: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        data = body
        headers = {"Content-Type": "application/json"}
        if framing == "gzip":
            data = zlib.compress(body, wbits=31)
            headers["Content-Encoding"] = "gzip"
        resp = web.StreamResponse(headers=headers)
        if framing != "chunked":
            resp.content_length = len(data)
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(len(data)):
                await resp.write(data[i : i + 1])
                sent.append(i)
                await asyncio.sleep(1.0)
        return resp

    url = await loopback(handler)
    started = time.monotonic()
    # 1 s timeout, 2 s interval: a retry (1.5 s more) would not fit, so one attempt.
    result = await probe_real(session, loopback_config(url, timeout="1s", interval="2s"))
    elapsed = time.monotonic() - started
    assert (result.outcome, result.attempts) == (Outcome.TIMEOUT, 1)
    assert result.detail == "no complete answer within 1s"
    assert sent, "the headers and a first byte went out: the timeout struck while reading the body"
    assert 0.9 <= elapsed < 1.5


@pytest.mark.parametrize("seconds", [0.5, 5.0, 30.0])
def test_attempt_deadlines_are_not_rounded_up(seconds: float) -> None:
    """aiohttp rounds deadlines of ceil_threshold (5 s) and more up to a whole second; an
    attempt must end within the endpoint's timeout, not up to a second after it."""
    from exporter.probes.http import _client_timeout

    timeout = _client_timeout(seconds)
    assert timeout.total == seconds and seconds < timeout.ceil_threshold


# ---------------------------------------------------------------- redirects: keys never reach another origin

Seen = list[tuple[str, str, dict[str, str], bytes]]  # method, path and query, headers, body


def recorder(seen: Seen, status: int = 200, body: object = None) -> Handler:
    """A handler that notes every request it gets and answers `body` as JSON."""

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        return web.json_response(body if body is not None else {"status": "1", "result": "ok"}, status=status)

    return handler


AUTHS = {
    "header": ({"type": "header", "name": "X-Key", "env": ["K_1"]}, ""),
    "query": ({"type": "query", "name": "apikey", "env": ["K_1"]}, ""),
    "path": ({"type": "path", "env": ["K_1"]}, "/v3/{key}"),
}


@pytest.mark.parametrize("auth", list(AUTHS))
async def test_redirect_to_another_origin_is_not_followed(session, loopback: Serve, auth: str) -> None:
    """A 302 to another host:port must not carry the key there, wherever the key sits:
    in a header, in the query or in the path (a moved host keeps path and query)."""
    elsewhere: Seen = []
    other = await loopback(recorder(elsewhere))

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(other + request.path_qs)

    url = await loopback(moved)
    spec, path = AUTHS[auth]
    result = await probe_real(session, loopback_config(url + path, auth=spec))
    assert elsewhere == [], "the other origin was contacted"
    assert (result.outcome, result.status_code, result.attempts) == (Outcome.BAD_PAYLOAD, 302, 1)
    assert result.detail == f"redirected to another origin ({other}); not followed, so no key goes there: update base_url if the API moved"
    assert SECRET_1 not in result.detail


async def test_redirect_within_the_origin_is_followed_with_the_key(session, loopback: Serve) -> None:
    seen: Seen = []
    answer = recorder(seen)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/old":
            raise web.HTTPMovedPermanently("/api/new")  # relative: resolved against the request
        return await answer(request)

    url = await loopback(handler)
    result = await probe_real(session, loopback_config(url + "/api/old", auth=AUTHS["header"][0]))
    assert (result.outcome, result.status_code, result.attempts) == (Outcome.SUCCESS, 200, 1)
    assert [(method, path, headers.get("X-Key")) for method, path, headers, _ in seen] == [("GET", "/api/new", SECRET_1)]


async def test_redirects_end_after_the_hop_limit(session, loopback: Serve) -> None:
    from exporter.limits import REDIRECT_HOPS

    hops: list[str] = []

    async def loop(request: web.Request) -> web.Response:
        hops.append(request.path)
        raise web.HTTPFound(f"/hop{len(hops)}")

    url = await loopback(loop)
    result = await probe_real(session, loopback_config(url))
    assert (result.outcome, result.status_code) == (Outcome.BAD_PAYLOAD, 302)
    assert result.detail == f"more than {REDIRECT_HOPS} redirects"
    assert len(hops) == REDIRECT_HOPS + 1


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [
        (307, "POST", b'{"jsonrpc":"2.0","method":"eth_blockNumber","id":1}'),
        (308, "POST", b'{"jsonrpc":"2.0","method":"eth_blockNumber","id":1}'),
        (303, "GET", b""),
        (302, "GET", b""),
    ],
)
async def test_a_followed_redirect_keeps_or_drops_the_post_body_as_http_says(session, loopback: Serve, status: int, method: str, body: bytes) -> None:
    seen: Seen = []
    answer = recorder(seen)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/rpc":
            return web.Response(status=status, headers={"Location": "/rpc2"})
        return await answer(request)

    url = await loopback(handler)
    result = await probe_real(session, loopback_config(url + "/rpc", method="POST", json={"jsonrpc": "2.0", "method": "eth_blockNumber", "id": 1}))
    assert result.outcome is Outcome.SUCCESS
    assert [(m, p, b) for m, p, _, b in seen] == [(method, "/rpc2", body)]
    if method == "GET":
        assert "Content-Type" not in seen[0][2]


async def test_redirect_hops_share_the_attempts_timeout(session, loopback: Serve) -> None:
    async def slow_hops(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        if request.path == "/a":
            raise web.HTTPFound("/b")
        return web.json_response({"status": "1"})

    url = await loopback(slow_hops)
    started = time.monotonic()
    result = await probe_real(session, loopback_config(url + "/a", timeout="1s", interval="2s"))
    assert result.outcome is Outcome.TIMEOUT
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize(
    ("location", "detail"),
    [
        ("ftp://files.example/x", "redirected to an invalid location"),
        ("mailto:ops@example.test", "redirected to an invalid location"),
        ("http://[::1", "redirected to an invalid location"),
        (
            "//elsewhere.test:8443/v1",
            "redirected to another origin (http://elsewhere.test:8443); not followed, so no key goes there: update base_url if the API moved",
        ),
        (
            "https://SAME-HOST.test/v1",
            "redirected to another origin (https://same-host.test); not followed, so no key goes there: update base_url if the API moved",
        ),
    ],
    ids=["ftp", "mailto", "broken", "scheme_relative", "https_upgrade_is_another_origin"],
)
async def test_redirect_locations_that_are_not_followed(session, loopback: Serve, location: str, detail: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    url = await loopback(handler)
    result = await probe_real(session, loopback_config(url, auth=AUTHS["header"][0]))
    assert (result.outcome, result.status_code, result.detail) == (Outcome.BAD_PAYLOAD, 302, detail)
