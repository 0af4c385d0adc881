"""The facts at the time of an incident, about its providers: recent outcomes, latency
against its baseline, quotas, breaker and key states, maintenance, chain lag.

One parser (`facts_from_api`) reads them from the JSON API's own shapes
(`/api/providers`, `/api/logs`, `/api/rate-limits`, `/api/config/keys`, `/api/chains`):
in the exporter's process the views build those rows directly (web/api/incidents.py), and
the standalone service GETs them from `--exporter-url`. With `--prometheus-url` (or when
the exporter does not answer) the same facts come from PromQL over the metrics contract.
Every input is read defensively: it comes over the network."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import structlog

from .. import safejson

log = structlog.get_logger()
RECENT_PROBES = 20  # per endpoint: the window "recent outcomes" counts over
WINDOW = "15m"  # the same window over Prometheus
FETCH_SECONDS = 5.0
LOG_QUERIES = 5  # /api/logs calls per explanation at most
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # one JSON API or Prometheus answer
FAILING = frozenset(
    {"timeout", "connection_error", "rate_limited", "auth_error", "client_error", "server_error", "bad_payload", "stale", "circuit_open", "budget_exhausted"}
)


@dataclass(frozen=True)
class EndpointFacts:
    provider: str
    endpoint: str
    last_outcome: str | None = None
    http_code: int | None = None
    latency_ms: float | None = None
    baseline_ms: float | None = None  # median latency of the recent successes (or of the last day, from Prometheus)
    recent: Mapping[str, int] = field(default_factory=dict)  # outcome -> count over the recent probes
    codes: Mapping[int, int] = field(default_factory=dict)  # HTTP code -> count over the recent probes
    last_error: str | None = None


@dataclass(frozen=True)
class QuotaFacts:
    scope: str
    percentage: float | None  # used, 0..100
    remaining: float | None
    status: str


@dataclass(frozen=True)
class KeyFacts:
    env: str  # the env var's name, never its value
    set: bool
    valid: bool


@dataclass(frozen=True)
class ChainFacts:
    endpoint: str
    chain: str
    lag_blocks: int | None
    lag_seconds: float | None
    still_seconds: float | None
    status: str
    syncing: bool
    chain_id_mismatch: bool


@dataclass(frozen=True)
class ProviderFacts:
    provider: str
    category: str = ""
    status: str = "unknown"
    circuit_state: str | None = None
    maintenance: bool = False
    maintenance_detail: str = ""
    endpoints: tuple[EndpointFacts, ...] = ()
    quotas: tuple[QuotaFacts, ...] = ()
    keys: tuple[KeyFacts, ...] = ()
    chain: tuple[ChainFacts, ...] = ()


@dataclass(frozen=True)
class Facts:
    source: str  # exporter (in-process), exporter_api, prometheus, none
    providers: tuple[ProviderFacts, ...] = ()
    warnings: tuple[str, ...] = ()

    def provider(self, name: str) -> ProviderFacts | None:
        return next((p for p in self.providers if p.provider == name), None)


class FactSource(Protocol):
    async def gather(self, providers: Sequence[str]) -> Facts: ...


class NoFacts:
    """For an incident service with nowhere to read facts from: the rules explain from the alerts alone."""

    async def gather(self, providers: Sequence[str]) -> Facts:
        return Facts("none", warnings=("no fact source configured (--exporter-url, --prometheus-url)",))


# ---------------------------------------------------------------- the JSON API's shapes


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _i(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _endpoint_facts(provider: str, row: Mapping[str, Any], logs: Sequence[Mapping[str, Any]]) -> EndpointFacts:
    name = _s(row.get("name")) or ""
    mine = [e for e in logs if e.get("provider") == provider and e.get("endpoint") == name][:RECENT_PROBES]  # newest first
    recent = Counter(str(e.get("status")) for e in mine if isinstance(e.get("status"), str))
    codes = Counter(c for e in mine if (c := _i(e.get("http_code"))) is not None)
    successes = [ms for e in mine if e.get("status") == "success" and (ms := _f(e.get("response_time_ms"))) is not None]
    last_error = next((_s(e.get("error_message")) for e in mine if e.get("status") in FAILING and _s(e.get("error_message"))), None)
    return EndpointFacts(
        provider=provider,
        endpoint=name,
        last_outcome=_s(row.get("status")),
        http_code=_i(row.get("http_code")),
        latency_ms=_f(row.get("response_time_ms")),
        baseline_ms=statistics.median(successes) if successes else None,
        recent=dict(recent),
        codes=dict(codes),
        last_error=last_error,
    )


def facts_from_api(
    source: str,
    wanted: Iterable[str],
    providers: Any,
    logs: Any = (),
    rate_limits: Any = (),
    keys: Any = (),
    chains: Any = (),
    warnings: Sequence[str] = (),
) -> Facts:
    """Facts about the `wanted` providers from the JSON API's rows (any of them may be
    missing or malformed: what cannot be read is left out)."""
    names = set(wanted)
    log_rows = _dicts(logs)
    out: list[ProviderFacts] = []
    for row in _dicts(providers):
        name = _s(row.get("id")) or _s(row.get("name"))
        if name is None or name not in names:
            continue
        found = row.get("maintenance")
        maintenance: Mapping[str, Any] = found if isinstance(found, dict) else {}
        key_row = next((k for k in _dicts(keys) if k.get("provider") == name), {})
        chain_rows = [
            ChainFacts(
                endpoint=_s(e.get("endpoint")) or "",
                chain=_s(c.get("chain")) or "",
                lag_blocks=_i(e.get("lag_blocks")),
                lag_seconds=_f(e.get("lag_seconds")),
                still_seconds=_f(e.get("still_seconds")),
                status=_s(e.get("status")) or "unknown",
                syncing=e.get("syncing") is True,
                chain_id_mismatch=e.get("chain_id_mismatch") is True,
            )
            for c in _dicts(chains)
            for e in _dicts(c.get("endpoints"))
            if e.get("provider") == name
        ]
        out.append(
            ProviderFacts(
                provider=name,
                category=_s(row.get("category")) or "",
                status=_s(row.get("status")) or "unknown",
                circuit_state=_s(row.get("circuit_state")),
                maintenance=maintenance.get("active") is True,
                maintenance_detail=_s(maintenance.get("detail")) or "",
                endpoints=tuple(_endpoint_facts(name, e, log_rows) for e in _dicts(row.get("endpoints"))),
                quotas=tuple(
                    QuotaFacts(_s(q.get("scope")) or "", _f(q.get("percentage")), _f(q.get("remaining")), _s(q.get("status")) or "unknown")
                    for q in _dicts(rate_limits)
                    if q.get("provider") == name
                ),
                keys=tuple(KeyFacts(_s(k.get("env")) or "", k.get("set") is True, k.get("valid") is True) for k in _dicts(key_row.get("keys"))),
                chain=tuple(chain_rows),
            )
        )
    return Facts(source, tuple(out), tuple(warnings))


# ---------------------------------------------------------------- over HTTP (the standalone service)


class FetchError(Exception):
    pass


async def _get_json(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None) -> Any:
    try:
        async with asyncio.timeout(FETCH_SECONDS), session.get(url, headers=headers, params=params, allow_redirects=False) as resp:
            if resp.status != 200:
                raise FetchError(f"{url.split('?')[0]} answered HTTP {resp.status}")
            raw = await resp.content.read(MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:
                raise FetchError(f"{url.split('?')[0]}: answer larger than {MAX_ANSWER_BYTES} bytes")
            return safejson.loads(raw, max_depth=64)
    except (TimeoutError, aiohttp.ClientError, safejson.JsonError) as e:
        raise FetchError(f"{url.split('?')[0]}: {type(e).__name__}") from None


class ExporterApiFacts:
    """The facts from a running exporter's JSON API (`--exporter-url`)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def gather(self, providers: Sequence[str]) -> Facts:
        async def get(path: str, params: Mapping[str, str] | None = None) -> Any:
            return await _get_json(self.session, f"{self.base}{path}", self.headers, params)

        rows = await get("/api/providers")
        logs: list[Any] = []
        # A few providers: their own recent probes each; a storm over many: the whole ring once.
        queries = [{"provider": name, "per_page": "200"} for name in providers] if len(providers) <= LOG_QUERIES else [{"per_page": "1000"}]
        for params in queries:
            page = await get("/api/logs", params)
            logs.extend(_dicts(page.get("logs")) if isinstance(page, dict) else [])
        warnings: list[str] = []
        extra: dict[str, Any] = {}
        for key, path in (("rate_limits", "/api/rate-limits"), ("keys", "/api/config/keys"), ("chains", "/api/chains")):
            try:
                extra[key] = await get(path)
            except FetchError as e:  # an older exporter without /api/chains still gives the rest
                warnings.append(str(e))
        return facts_from_api("exporter_api", providers, rows, logs, warnings=warnings, **extra)


_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


class PrometheusFacts:
    """The same facts from Prometheus's HTTP API over the metrics contract (`--prometheus-url`)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/")

    async def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        body = await _get_json(self.session, f"{self.base}/api/v1/query", {}, {"query": promql})
        if not isinstance(body, dict) or body.get("status") != "success":
            raise FetchError("prometheus: the query failed")
        out = []
        for item in _dicts(body.get("data", {}).get("result") if isinstance(body.get("data"), dict) else None):
            value = item.get("value")
            found = item.get("metric")
            metric: Mapping[str, Any] = found if isinstance(found, dict) else {}
            try:
                number = float(value[1]) if isinstance(value, list) and len(value) == 2 else None
            except (TypeError, ValueError):
                number = None
            if number is not None and number == number:  # not NaN
                out.append(({str(k): str(v) for k, v in metric.items()}, number))
        return out

    async def gather(self, providers: Sequence[str]) -> Facts:
        names = [p for p in providers if _NAME.match(p)]
        if not names:
            return Facts("prometheus")
        sel = f'provider=~"{"|".join(re.escape(n) for n in names)}"'
        q = self._query
        outcomes = await q(f"sum by (provider, endpoint, outcome) (increase(crypto_api_probes_total{{{sel}}}[{WINDOW}])) > 0")
        codes = await q(f"sum by (provider, endpoint, code) (increase(crypto_api_http_responses_total{{{sel}}}[{WINDOW}])) > 0")
        latency = await q(f"histogram_quantile(0.5, sum by (provider, endpoint, le) (rate(crypto_api_probe_duration_seconds_bucket{{{sel}}}[5m])))")
        baseline = await q(f"histogram_quantile(0.5, sum by (provider, endpoint, le) (rate(crypto_api_probe_duration_seconds_bucket{{{sel}}}[1d])))")
        status = await q(f"crypto_api_provider_status{{{sel}}} == 1")
        breaker = await q(f"crypto_api_circuit_breaker_state{{{sel}}} == 1")
        keys = await q(f"crypto_api_key_valid{{{sel}}}")
        maintenance = await q(f"crypto_api_provider_maintenance{{{sel}}}")
        quotas = await q(f"100 * (1 - crypto_api_rate_limit_remaining{{{sel}}} / crypto_api_rate_limit_limit{{{sel}}})")
        lag = await q(f"crypto_api_chain_head_lag_blocks{{{sel}}}")
        out = []
        for name in names:
            eps = sorted({m["endpoint"] for m, _ in (*outcomes, *latency) if m.get("provider") == name and m.get("endpoint")})

            def of(rows: list[tuple[dict[str, str], float]], ep: str) -> list[tuple[dict[str, str], float]]:
                return [(m, v) for m, v in rows if m.get("provider") == name and m.get("endpoint") == ep]  # noqa: B023 - used at once

            endpoints = []
            for ep in eps:
                recent = {m["outcome"]: round(v) for m, v in of(outcomes, ep) if "outcome" in m and round(v) > 0}
                code_counts = {int(m["code"]): round(v) for m, v in of(codes, ep) if m.get("code", "").isdigit() and round(v) > 0}
                lat = next((v * 1000 for _, v in of(latency, ep)), None)
                base = next((v * 1000 for _, v in of(baseline, ep)), None)
                failing = {o: n for o, n in recent.items() if o in FAILING}
                last = max(failing, key=lambda o: failing[o]) if failing else ("success" if recent else None)
                endpoints.append(
                    EndpointFacts(name, ep, last, max(code_counts, key=lambda c: code_counts[c]) if code_counts else None, lat, base, recent, code_counts)
                )
            out.append(
                ProviderFacts(
                    provider=name,
                    category=next((m.get("category", "") for m, _ in status if m.get("provider") == name), ""),
                    status=next((m.get("status", "unknown") for m, _ in status if m.get("provider") == name), "unknown"),
                    circuit_state=next((m.get("state") for m, _ in breaker if m.get("provider") == name), None),
                    maintenance=any(v == 1 for m, v in maintenance if m.get("provider") == name),
                    endpoints=tuple(endpoints),
                    quotas=tuple(
                        QuotaFacts(m.get("scope", ""), v, None, "exhausted" if v >= 100 else "normal") for m, v in quotas if m.get("provider") == name
                    ),
                    keys=tuple(KeyFacts(m.get("key", ""), True, v == 1) for m, v in keys if m.get("provider") == name),
                    chain=tuple(
                        ChainFacts(m.get("endpoint", ""), m.get("chain", ""), int(v), None, None, "lagging" if v > 0 else "ok", False, False)
                        for m, v in lag
                        if m.get("provider") == name
                    ),
                )
            )
        return Facts("prometheus", tuple(out))


class FirstOf:
    """The first source that answers; the failures of the others become warnings."""

    def __init__(self, sources: Sequence[FactSource]) -> None:
        self.sources = tuple(sources)

    async def gather(self, providers: Sequence[str]) -> Facts:
        warnings: list[str] = []
        for source in self.sources:
            try:
                facts = await source.gather(providers)
            except FetchError as e:
                warnings.append(str(e))
                log.warning("incident_facts_failed", source=type(source).__name__, error=str(e))
                continue
            return Facts(facts.source, facts.providers, (*warnings, *facts.warnings))
        return Facts("none", warnings=tuple(warnings) or ("no fact source configured",))
