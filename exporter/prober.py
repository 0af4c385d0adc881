"""One probe of one endpoint: budget, circuit breaker, HTTP request, classification,
retry policy and payload checks, ending in exactly one `ProbeResult`.

Nothing here raises into the scheduler: every failure is an outcome.
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import yarl

from .circuit import CircuitBreaker
from .classify import PayloadVerdict, check_payload, classify_status, short
from .config import ApiKey, AuthType, Endpoint, Provider
from .keys import KeyRing
from .model import KeyCheck, Outcome, ProbeResult, QuotaObservation, RetryReason
from .ratelimit import BudgetWindow, parse_quotas, pause_until
from .redact import Redactor

MAX_ATTEMPTS = 3  # DESIGN.md: timeouts and 5xx are tried at most three times
TIMEOUT_GROWTH = 1.5  # each timeout retry waits 1.5x longer
USER_AGENT = "crypto-api-exporter/0.1 (+https://github.com/crypto-api-exporter)"
_RETRYABLE_BACKOFF = {Outcome.SERVER_ERROR: RetryReason.SERVER_ERROR, Outcome.CONNECTION_ERROR: RetryReason.CONNECTION_ERROR}


@dataclass
class ProviderGuards:
    """The mutable per-provider state the prober consults: kept across probes and reloads."""

    breaker: CircuitBreaker
    keys: KeyRing
    budget: BudgetWindow | None = None

    @classmethod
    def for_provider(cls, provider: Provider) -> ProviderGuards:
        return cls(
            CircuitBreaker(provider.circuit_breaker),
            KeyRing(provider.auth.keys),
            BudgetWindow(provider.budget) if provider.budget else None,
        )


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    url: yarl.URL
    headers: dict[str, str]
    body: bytes | None


class RequestCache:
    """Each endpoint's request, built once per key rather than on every probe (encoding
    the URL and query is a good part of a keep-alive probe's CPU). An entry belongs to
    one Endpoint object: after a reload the new object gets a new entry."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str | None], tuple[Endpoint, Provider, PreparedRequest]] = {}

    def get(self, provider: Provider, endpoint: Endpoint, key: ApiKey | None) -> PreparedRequest:
        ident = (provider.name, endpoint.name, key.env if key else None)
        hit = self._entries.get(ident)
        if hit is not None and hit[0] is endpoint and hit[1] is provider:
            return hit[2]
        url, params, headers = build_request(provider, endpoint, key)
        if endpoint.json is not None:
            headers.setdefault("Content-Type", "application/json")
        body = orjson.dumps(endpoint.json) if endpoint.json is not None else None
        prepared = PreparedRequest(yarl.URL(url).update_query(params) if params else yarl.URL(url), headers, body)
        self._entries[ident] = (endpoint, provider, prepared)
        return prepared


@dataclass
class ProbeContext:
    """What every probe shares: HTTP sessions, clocks and the redactor."""

    session: aiohttp.ClientSession
    fresh_session: aiohttp.ClientSession | None = None  # connector with force_close, for fresh_connection
    redactor: Redactor = field(default_factory=Redactor)
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    backoff_base: float = 0.5
    requests: RequestCache = field(default_factory=RequestCache)


@dataclass(frozen=True, slots=True)
class _Attempt:
    outcome: Outcome
    status: int | None = None
    duration: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    verdict: PayloadVerdict | None = None
    detail: str = ""


@functools.lru_cache(maxsize=4096)
def env_proxy(base_url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY name for a base URL.

    Looked up once per base URL: aiohttp's trust_env would look it up on every
    request, in a thread, which costs more than the rest of a keep-alive probe."""
    scheme, _, rest = base_url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if urllib.request.proxy_bypass_environment(host):
        return None
    return urllib.request.getproxies_environment().get(scheme)


def build_request(provider: Provider, endpoint: Endpoint, key: ApiKey | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, query params and headers for one attempt, with the key where auth puts it."""
    url = provider.base_url + endpoint.path
    params = dict(endpoint.params)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **endpoint.headers}
    auth = provider.auth
    secret = auth.prefix + key.value if key else ""
    if auth.type is AuthType.PATH:
        url = url.replace("{key}", key.value if key else "")
    elif key and auth.type is AuthType.QUERY:
        params[auth.name] = secret
    elif key and auth.type is AuthType.HEADER:
        headers[auth.name] = secret
    return url, params, headers


@functools.lru_cache(maxsize=256)
def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it grows past `limit` (we stop reading there)."""
    length = resp.content_length
    if length is not None:
        if length > limit:
            return None
        return await resp.read()  # the common case: one call, no chunk iteration
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _attempt(ctx: ProbeContext, provider: Provider, endpoint: Endpoint, key: ApiKey | None, timeout: float) -> _Attempt:
    request = ctx.requests.get(provider, endpoint, key)
    session = ctx.fresh_session if endpoint.fresh_connection and ctx.fresh_session else ctx.session
    started = time.perf_counter()
    try:
        async with session.request(
            endpoint.method.value,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=_client_timeout(timeout),
            allow_redirects=True,
            proxy=env_proxy(provider.base_url),
        ) as resp:
            body = await _read_capped(resp, endpoint.max_body_bytes)
            duration = time.perf_counter() - started
            status, resp_headers = resp.status, resp.headers
    except asyncio.TimeoutError:
        return _Attempt(Outcome.TIMEOUT, detail=f"no complete answer within {timeout:g}s")
    except aiohttp.ClientPayloadError as e:
        return _Attempt(Outcome.CONNECTION_ERROR, detail=f"body cut off ({type(e).__name__})")
    except (aiohttp.ClientError, OSError) as e:
        # Exception text can hold the URL, and the URL can hold a key: name the type only.
        reason = getattr(e, "strerror", None) or getattr(getattr(e, "os_error", None), "strerror", None) or ""
        return _Attempt(Outcome.CONNECTION_ERROR, detail=short(f"{type(e).__name__} {reason}".strip()))
    if body is None:
        return _Attempt(Outcome.BAD_PAYLOAD, status, duration, resp_headers, detail=f"body larger than {endpoint.max_body_bytes} bytes")
    decided = classify_status(status, endpoint)
    if decided is not None:
        # Error bodies still get a look: a 4xx whose body names a rate limit is one.
        return _Attempt(_refine(decided, body, endpoint, ctx.wall()), status, duration, resp_headers, detail=f"HTTP {status}")
    verdict = check_payload(body, endpoint, ctx.wall())
    return _Attempt(verdict.outcome, status, duration, resp_headers, verdict, verdict.detail)


def _refine(outcome: Outcome, body: bytes, endpoint: Endpoint, now: float) -> Outcome:
    """A non-2xx answer whose body matches a rate-limit or auth rule takes that outcome
    (Bybit answers 403 "access too frequent"; CoinMarketCap 401 with error_code 1008)."""
    if not endpoint.error_rules or outcome not in (Outcome.CLIENT_ERROR, Outcome.AUTH_ERROR, Outcome.SERVER_ERROR):
        return outcome
    verdict = check_payload(body, endpoint, now)
    return verdict.outcome if verdict.outcome in (Outcome.RATE_LIMITED, Outcome.AUTH_ERROR) else outcome


async def probe(ctx: ProbeContext, provider: Provider, endpoint: Endpoint, guards: ProviderGuards) -> ProbeResult:
    """Probe once, with the retry policy of DESIGN.md; never raises."""
    started_wall, started_mono = ctx.wall(), ctx.monotonic()

    def finish(outcome: Outcome, **kw: Any) -> ProbeResult:
        detail = ctx.redactor.redact(kw.pop("detail", ""))
        quotas: tuple[QuotaObservation, ...] = kw.pop("quotas", ())
        if guards.budget is not None:
            quotas = (*quotas, guards.budget.observe(ctx.wall()))
        return ProbeResult(
            provider=provider.name,
            category=provider.category.value,
            endpoint=endpoint.name,
            outcome=outcome,
            started_at=started_wall,
            finished_at=ctx.wall(),
            detail=detail,
            quotas=quotas,
            circuit_state=guards.breaker.state,
            **kw,
        )

    if not guards.breaker.allow(started_mono):
        return finish(Outcome.CIRCUIT_OPEN, detail="circuit breaker open: provider failing, probe skipped")

    timeout = endpoint.timeout
    key = guards.keys.current()
    tried_keys: set[str] = set()
    codes: list[int] = []
    retries: list[RetryReason] = []
    key_checks: list[KeyCheck] = []
    attempts = 0
    last: _Attempt | None = None
    timeouts = server_tries = 0
    while True:
        if guards.budget is not None and not guards.budget.take(ctx.wall()):
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
        if outcome is Outcome.TIMEOUT:
            timeouts += 1
            if timeouts < MAX_ATTEMPTS:
                retries.append(RetryReason.TIMEOUT)
                timeout *= TIMEOUT_GROWTH
                continue
        elif outcome is Outcome.AUTH_ERROR and key is not None:
            key_checks.append(KeyCheck(key.env, False))
            nxt = guards.keys.reject(key)
            if nxt is not None and nxt.env not in tried_keys:
                retries.append(RetryReason.KEY_ROTATION)
                key = nxt
                continue
        elif outcome in _RETRYABLE_BACKOFF:
            server_tries += 1
            delay = ctx.backoff_base * 2 ** (server_tries - 1)
            elapsed = ctx.monotonic() - started_mono
            # Back off only while the retry still fits in this endpoint's interval.
            if server_tries < MAX_ATTEMPTS and elapsed + delay + timeout < endpoint.interval:
                retries.append(_RETRYABLE_BACKOFF[outcome])
                await ctx.sleep(delay)
                continue
        break

    assert last is not None
    now_mono = ctx.monotonic()
    guards.breaker.record(last.outcome, now_mono)
    if key is not None and last.status is not None and last.status < 400 and last.outcome is not Outcome.AUTH_ERROR:
        guards.keys.accept(key)
        key_checks.append(KeyCheck(key.env, True))
    now = ctx.wall()
    quotas = parse_quotas(last.headers, provider.quota_headers, now)
    verdict = last.verdict
    return finish(
        last.outcome,
        duration=last.duration,
        status_code=last.status,
        attempts=attempts,
        http_codes=tuple(codes),
        retries=tuple(retries),
        detail=last.detail,
        quotas=quotas,
        data_timestamp=verdict.data_timestamp if verdict else None,
        values=verdict.values if verdict else (),
        key_env=key.env if key else None,
        key_checks=tuple(key_checks),
        pause_until=pause_until(last.headers, quotas, now) if last.outcome is Outcome.RATE_LIMITED else None,
        slow=last.duration is not None and last.duration > endpoint.slow_threshold,
    )


async def probe_with_key(ctx: ProbeContext, provider: Provider, endpoint: Endpoint, key: ApiKey, budget: BudgetWindow | None = None) -> ProbeResult:
    """One attempt with one given key: no retry, no circuit breaker, no key rotation, and
    the caller decides whether to record it (the JSON API's keys test does not). It spends
    the client-side budget like any request; never raises."""
    started = ctx.wall()

    def result(outcome: Outcome, attempt: _Attempt | None, detail: str) -> ProbeResult:
        check: tuple[KeyCheck, ...] = ()
        if attempt is not None and outcome is Outcome.AUTH_ERROR:
            check = (KeyCheck(key.env, False),)
        elif attempt is not None and attempt.status is not None and attempt.status < 400:
            check = (KeyCheck(key.env, True),)
        return ProbeResult(
            provider=provider.name,
            category=provider.category.value,
            endpoint=endpoint.name,
            outcome=outcome,
            started_at=started,
            finished_at=ctx.wall(),
            duration=attempt.duration if attempt else None,
            status_code=attempt.status if attempt else None,
            attempts=1 if attempt else 0,
            http_codes=(attempt.status,) if attempt is not None and attempt.status is not None else (),
            detail=ctx.redactor.redact(detail),
            key_env=key.env,
            key_checks=check,
        )

    if budget is not None and not budget.take(ctx.wall()):
        return result(Outcome.BUDGET_EXHAUSTED, None, "client-side budget used up for this window")
    attempt = await _attempt(ctx, provider, endpoint, key, endpoint.timeout)
    return result(attempt.outcome, attempt, attempt.detail)
