"""The `http` probe kind: GET, or POST with a JSON body. Budget, circuit breaker, the
request, classification, the retry policy and payload checks, ending in exactly one
`ProbeResult`.

Nothing here raises into the scheduler: every failure is an outcome.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl
from aiohttp import hdrs

from .. import limits
from ..classify import PayloadVerdict, classify_response, short
from ..config import ApiKey, Endpoint, Provider
from ..model import KeyCheck, Outcome, ProbeResult, RetryReason
from ..ratelimit import parse_quotas, pause_until
from .context import ProbeContext, ProbeSpec, probe_result
from .request import env_proxy

MAX_ATTEMPTS = 3  # DESIGN.md: timeouts and 5xx are tried at most three times
TIMEOUT_GROWTH = 1.5  # each timeout retry waits 1.5x longer
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 64 * 1024  # aiohttp's read buffer: decoded bytes are counted in pieces of this size
_RETRYABLE_BACKOFF = {Outcome.SERVER_ERROR: RetryReason.SERVER_ERROR, Outcome.CONNECTION_ERROR: RetryReason.CONNECTION_ERROR}


def retry_fits(elapsed: float, delay: float, next_timeout: float, interval: float) -> bool:
    """Whether another attempt (after `delay`, waiting up to `next_timeout`) still ends
    within the endpoint's interval: a probe must never run into its next run."""
    return elapsed + delay + next_timeout < interval


@dataclass(frozen=True, slots=True)
class _Attempt:
    outcome: Outcome
    status: int | None = None
    duration: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    verdict: PayloadVerdict | None = None
    detail: str = ""
    body: bytes | None = None  # the answer's body, for kinds that read it themselves (status)


def one_attempt(attempt: _Attempt | None) -> dict[str, Any]:
    """What a result of a single attempt (a key test, a status source) says about it."""
    if attempt is None:
        return {}
    codes = (attempt.status,) if attempt.status is not None else ()
    return {"duration": attempt.duration, "status_code": attempt.status, "attempts": 1, "http_codes": codes}


@functools.lru_cache(maxsize=256)
def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """The whole attempt's bound: aiohttp's total timeout runs from the request until the
    body is read (a body sent a byte a second ends here too). Its default rounds
    deadlines of 5 s and more up to the next whole second, which would let an attempt
    run up to a second past the endpoint's timeout: not here."""
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The decoded body, or None once it grows past `limit` decoded bytes: reading stops
    there and the connection is closed, so the rest is never received, let alone inflated.

    Content-Length counts the bytes on the wire. With a Content-Encoding the decoded body
    can be a thousand times larger (1,000 MiB of zeros gzip to 1 MB), so only an
    unencoded length is trusted. aiohttp (3.14) inflates as the stream is read, at most
    a read buffer ahead of us, so the count below bounds memory and CPU alike."""
    length = resp.content_length
    if length is not None and resp.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() == "identity":
        if length > limit:
            return None
        return await resp.read()  # the common case: one call, no chunk iteration
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            resp.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _attempt(ctx: ProbeContext, provider: Provider, endpoint: Endpoint, key: ApiKey | None, wait: float) -> _Attempt:
    """One request; `wait` bounds it whole (connect, redirects, headers, body), in seconds.

    Redirects are followed here rather than by aiohttp, which keeps custom headers (an
    `X-Key`) on a redirect to another host, and would send a key in the path or the query
    wherever the Location says. Within the configured origin a redirect is followed with
    the key; to another origin it is not followed at all, and the attempt ends in
    `bad_payload` naming that origin. Following it without the key would only end in a
    401 that marks a good key invalid (or a keyless answer that hides the move), and a
    monitor should not silently probe a host nobody configured: a provider that moved its
    API shows up as a failing endpoint whose detail says where to, and the user updates
    base_url once they trust the new host."""
    request = ctx.requests.get(provider, endpoint, key)
    session = ctx.fresh_session if endpoint.fresh_connection and ctx.fresh_session else ctx.session
    url, method, headers, data = request.url, endpoint.method.value, request.headers, request.body
    timeout = _client_timeout(wait)
    hops = 0
    started = time.perf_counter()
    try:
        while True:
            async with session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
                proxy=env_proxy(provider.base_url),
            ) as resp:
                status, resp_headers = resp.status, resp.headers
                location = resp_headers.get(hdrs.LOCATION) if status in _REDIRECT_CODES else None
                if location is None:
                    body = await _read_capped(resp, endpoint.max_body_bytes)
                    duration = time.perf_counter() - started
                    break
            duration = time.perf_counter() - started
            target = _redirect_target(url, location)
            if target is None:
                return _Attempt(Outcome.BAD_PAYLOAD, status, duration, resp_headers, detail="redirected to an invalid location")
            if _origin(target) != _origin(request.url):
                origin = short(str(target.origin()))  # scheme, host and port only: never the path or query, where a key may sit
                detail = f"redirected to another origin ({origin}); not followed, so no key goes there: update base_url if the API moved"
                return _Attempt(Outcome.BAD_PAYLOAD, status, duration, resp_headers, detail=detail)
            hops += 1
            if hops > limits.REDIRECT_HOPS:
                return _Attempt(Outcome.BAD_PAYLOAD, status, duration, resp_headers, detail=f"more than {limits.REDIRECT_HOPS} redirects")
            if status == 303 or (status in (301, 302) and method == "POST"):
                # What browsers and aiohttp do: the redirected request is a GET, without the body.
                method, data = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            url = target
            left = wait - duration  # every hop spends the same attempt's time
            if left <= 0:
                raise TimeoutError
            timeout = aiohttp.ClientTimeout(total=left, ceil_threshold=math.inf)
    except TimeoutError:
        return _Attempt(Outcome.TIMEOUT, detail=f"no complete answer within {wait:g}s")
    except aiohttp.ClientPayloadError as e:
        return _Attempt(Outcome.CONNECTION_ERROR, detail=f"body cut off ({type(e).__name__})")
    except (aiohttp.ClientError, OSError) as e:
        # Exception text can hold the URL, and the URL can hold a key: name the type only.
        reason = getattr(e, "strerror", None) or getattr(getattr(e, "os_error", None), "strerror", None) or ""
        return _Attempt(Outcome.CONNECTION_ERROR, detail=short(f"{type(e).__name__} {reason}".strip()))
    if body is None:
        return _Attempt(Outcome.BAD_PAYLOAD, status, duration, resp_headers, detail=f"body larger than {endpoint.max_body_bytes} bytes")
    verdict = classify_response(status, body, endpoint, ctx.wall())
    return _Attempt(verdict.outcome, status, duration, resp_headers, verdict, verdict.detail, body)


def _redirect_target(url: yarl.URL, location: str) -> yarl.URL | None:
    """The absolute http(s) URL a Location header points to, or None when it is none."""
    try:
        target = url.join(yarl.URL(location))
    except (ValueError, TypeError):
        return None
    if target.scheme not in ("http", "https") or not target.host:
        return None
    return target


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    # yarl lowercases scheme and host and gives the scheme's default port when none is written.
    return (url.scheme, url.host, url.port)


async def probe(ctx: ProbeContext, spec: ProbeSpec) -> ProbeResult:
    """Probe once, with the retry policy of DESIGN.md; never raises."""
    provider, endpoint, runtime = spec.provider, spec.endpoint, spec.runtime
    started_wall, started_mono = ctx.wall(), ctx.monotonic()

    def finish(outcome: Outcome, **kw: Any) -> ProbeResult:
        return probe_result(ctx, spec, started_wall, outcome, **kw)

    if not runtime.breaker.allow(started_mono):
        return finish(Outcome.CIRCUIT_OPEN, detail="circuit breaker open: provider failing, probe skipped")

    timeout = endpoint.timeout
    key = runtime.keys.current(started_mono)  # may be a rejected key whose rest is over: its trial
    tried_keys: set[str] = set()
    codes: list[int] = []
    retries: list[RetryReason] = []
    key_checks: list[KeyCheck] = []
    attempts = 0
    last: _Attempt | None = None
    timeouts = server_tries = 0
    while True:
        if runtime.budget is not None and not runtime.budget.take(ctx.wall()):
            if last is None:
                return finish(Outcome.BUDGET_EXHAUSTED, detail="client-side budget used up for this window")
            break
        attempts += 1
        if key is not None:
            tried_keys.add(key.env)
        last = await _attempt(ctx, provider, endpoint, key, timeout)
        if last.status is not None:
            codes.append(last.status)
        outcome = last.outcome
        elapsed = ctx.monotonic() - started_mono
        if outcome is Outcome.TIMEOUT:
            timeouts += 1
            longer = timeout * TIMEOUT_GROWTH
            if timeouts < MAX_ATTEMPTS and retry_fits(elapsed, 0.0, longer, endpoint.interval):
                retries.append(RetryReason.TIMEOUT)
                timeout = longer
                continue
        elif outcome is Outcome.AUTH_ERROR and key is not None:
            key_checks.append(KeyCheck(key.env, False))
            nxt = runtime.keys.reject(key, ctx.monotonic())
            if nxt is not None and nxt.env not in tried_keys:
                retries.append(RetryReason.KEY_ROTATION)
                key = nxt
                continue
        elif outcome in _RETRYABLE_BACKOFF:
            server_tries += 1
            delay = ctx.backoff_base * 2 ** (server_tries - 1)
            if server_tries < MAX_ATTEMPTS and retry_fits(elapsed, delay, timeout, endpoint.interval):
                retries.append(_RETRYABLE_BACKOFF[outcome])
                await ctx.sleep(delay)
                continue
        break

    assert last is not None
    runtime.breaker.record(last.outcome, ctx.monotonic())
    # A 2xx proves the key; a redirect that was not followed says nothing of it.
    if key is not None and last.status is not None and last.status < 300 and last.outcome is not Outcome.AUTH_ERROR:
        runtime.keys.accept(key)
        key_checks.append(KeyCheck(key.env, True))
    now = ctx.wall()
    quotas = parse_quotas(last.headers, provider.quota_headers, now)
    verdict = last.verdict
    outcome, detail = last.outcome, last.detail
    if verdict is not None and verdict.values:
        # A value equal to itself past its max_unchanged: the answer is current in
        # form only (a stuck cache upstream); frozen.py.
        frozen = runtime.values.observe(endpoint, verdict.values, now)
        if frozen is not None and outcome is Outcome.SUCCESS:
            outcome, detail = Outcome.STALE, frozen
    return finish(
        outcome,
        duration=last.duration,
        status_code=last.status,
        attempts=attempts,
        http_codes=tuple(codes),
        retries=tuple(retries),
        detail=detail,
        quotas=quotas,
        data_timestamp=verdict.data_timestamp if verdict else None,
        values=verdict.values if verdict else (),
        key_env=key.env if key else None,
        key_checks=tuple(key_checks),
        pause_until=pause_until(last.headers, quotas, now) if last.outcome is Outcome.RATE_LIMITED else None,
        slow=last.duration is not None and last.duration > endpoint.slow_threshold,
    )


async def probe_key(ctx: ProbeContext, spec: ProbeSpec, key: ApiKey) -> ProbeResult:
    """One attempt with one given key: no retry, no circuit breaker, no key rotation. It
    spends the client-side budget like any request; the caller records what it learnt
    about the key. Never raises."""
    provider, endpoint, budget = spec.provider, spec.endpoint, spec.runtime.budget
    started = ctx.wall()

    def result(outcome: Outcome, attempt: _Attempt | None, detail: str) -> ProbeResult:
        check: tuple[KeyCheck, ...] = ()
        if attempt is not None and outcome is Outcome.AUTH_ERROR:
            check = (KeyCheck(key.env, False),)
        elif attempt is not None and attempt.status is not None and attempt.status < 300:
            check = (KeyCheck(key.env, True),)
        return probe_result(ctx, spec, started, outcome, detail, key_env=key.env, key_checks=check, **one_attempt(attempt))

    if budget is not None and not budget.take(ctx.wall()):
        return result(Outcome.BUDGET_EXHAUSTED, None, "client-side budget used up for this window")
    attempt = await _attempt(ctx, provider, endpoint, key, endpoint.timeout)
    return result(attempt.outcome, attempt, attempt.detail)
