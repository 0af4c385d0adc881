"""Pure functions from the exporter's state to the JSON shapes of the old "Crypto API
Monitor" backends (the typed models of models.py, which the OpenAPI document is made
from). They read `State`, `ProbeResult`s and scheduler `JobInfo`s only: nothing here does
HTTP or classifies anything again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import overload

from ...config import Config
from ...model import (
    Category,
    JobInfo,
    KeyTest,
    Outcome,
    ProbeResult,
    ProviderStatus,
    QuotaObservation,
    ScheduleResult,
)
from ...redact import mask
from ...state import EndpointState, ProviderState, State
from .models import (
    CategorySummary,
    EndpointSchedule,
    EndpointStatus,
    Failures,
    Freshness,
    FreshnessStatus,
    GroupStatus,
    KeyConfig,
    KeyState,
    KeyStatus,
    KeyTestEntry,
    LogEntry,
    Provider,
    QuotaStatus,
    RateLimit,
    Schedule,
    ScheduleStatus,
    Status,
    StatusCounts,
    SystemHealth,
)
from .remediation import hint

RATE_LIMIT_WARNING = 80.0  # percent of a quota used: rate_limit_alert and status "warning"
RATE_LIMIT_CRITICAL = 95.0
HEALTHY_RATIO = 0.8  # the old backends' "healthy": more than 80 % of providers online
TOP_FAILING = 10


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: float | None) -> str | None: ...
def iso(ts: float | None) -> str | None:
    """Unix seconds to ISO 8601 UTC (`2024-05-01T12:00:00.123000Z`)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@overload
def ms(seconds: float) -> float: ...
@overload
def ms(seconds: float | None) -> float | None: ...
def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _mean(values: Iterable[float]) -> float | None:
    vs = list(values)
    return sum(vs) / len(vs) if vs else None


def endpoint_latency(ep: EndpointState) -> float | None:
    last = ep.last_completed
    return last.duration if last is not None else None


def provider_latency(ps: ProviderState) -> float | None:
    return _mean(d for ep in ps.endpoints.values() if (d := endpoint_latency(ep)) is not None)


def last_probe_at(ps: ProviderState) -> float | None:
    times = [ep.last.finished_at for ep in ps.endpoints.values() if ep.last is not None]
    return max(times) if times else None


def system_health(online: int, probed: int) -> SystemHealth:
    if probed == 0:
        return "unknown"
    return "healthy" if online / probed > HEALTHY_RATIO else "degraded"


def status_counts(state: State) -> StatusCounts:
    """`status_update.data` and the core of /api/status: {total_apis, online, degraded,
    offline, unknown, disabled}. Disabled providers are not probed, so they are neither
    down nor part of `total_apis`: counted apart."""
    counts = Counter(ps.status() for ps in state.providers.values())
    return {
        "total_apis": len(state.providers),
        "online": counts[ProviderStatus.ONLINE],
        "degraded": counts[ProviderStatus.DEGRADED],
        "offline": counts[ProviderStatus.OFFLINE],
        "unknown": counts[ProviderStatus.UNKNOWN],
        "disabled": len(state.disabled),
    }


def status_summary(state: State, now: float) -> Status:
    data = status_counts(state)
    latency = _mean(d for ps in state.providers.values() if (d := provider_latency(ps)) is not None)
    probed = data["total_apis"] - data["unknown"]
    return {
        **data,
        "avg_response_time_ms": ms(latency) or 0.0,
        "last_update": iso(now),
        "system_health": system_health(data["online"], probed),
    }


def category_rows(state: State, now: float) -> list[CategorySummary]:
    rows: list[CategorySummary] = []
    for cat in Category:
        members = [ps for ps in state.providers.values() if ps.category == cat.value]
        if not members:
            continue
        statuses = [ps.status() for ps in members]
        online = statuses.count(ProviderStatus.ONLINE)
        probed = len(statuses) - statuses.count(ProviderStatus.UNKNOWN)
        latency = _mean(d for ps in members if (d := provider_latency(ps)) is not None)
        rate_limited = sum(1 for ps in members if any(ep.last is not None and ep.last.outcome is Outcome.RATE_LIMITED for ep in ps.endpoints.values()))
        rows.append(
            {
                "name": cat.value.replace("_", " ").title(),
                "category": cat,
                "total_sources": len(members),
                "online_sources": online,
                "online_ratio": round(online / len(members), 4),
                "avg_response_time_ms": ms(latency) or 0.0,
                "rate_limited_count": rate_limited,
                "last_updated": iso(now),
                "status": group_status(online, probed),
            }
        )
    return rows


def group_status(online: int, probed: int) -> GroupStatus:
    if probed == 0:
        return "unknown"
    return "online" if online / probed > HEALTHY_RATIO else "degraded"


def quota_percentage(q: QuotaObservation) -> float | None:
    """Percent of a quota used, or None when the limit or the remainder is unknown."""
    if q.limit is None or q.remaining is None or q.limit <= 0:
        return None
    return round(min(max((q.limit - q.remaining) / q.limit * 100, 0.0), 100.0), 2)


def quota_status(pct: float | None) -> QuotaStatus:
    if pct is None:
        return "unknown"
    if pct >= 100:
        return "exhausted"
    if pct >= RATE_LIMIT_CRITICAL:
        return "critical"
    if pct >= RATE_LIMIT_WARNING:
        return "warning"
    return "normal"


def _busiest_quota(ps: ProviderState, now: float) -> QuotaObservation | None:
    known = [(p, q) for q in ps.all_quotas(now).values() if (p := quota_percentage(q)) is not None]
    return max(known, key=lambda x: x[0])[1] if known else None


def endpoint_row(ep: EndpointState, now: float) -> EndpointStatus:
    last = ep.last
    return {
        "name": ep.name,
        "status": last.outcome if last else None,
        "healthy": ep.healthy,
        "response_time_ms": ms(endpoint_latency(ep)),
        "http_code": last.status_code if last else None,
        "last_probe": iso(last.finished_at) if last else None,
        "last_success": iso(ep.last_success_at),
        "data_age_seconds": _round(ep.data_age(now)),
        "health_score": None if (s := ep.health_score()) is None else round(100 * s),
    }


def provider_row(ps: ProviderState, now: float) -> Provider:
    quota = _busiest_quota(ps, now)
    pct = quota_percentage(quota) if quota else None
    return {
        "id": ps.name,
        "name": ps.name,
        "category": ps.spec.category,
        "status": ps.status(),
        "health_score": ps.health_score(),
        "response_time_ms": ms(provider_latency(ps)),
        "rate_limit": {
            "used": None if quota is None or quota.limit is None or quota.remaining is None else quota.limit - quota.remaining,
            "total": quota.limit if quota else None,
            "period": quota.scope if quota else None,
            "percentage": pct,
        },
        "last_fetch": iso(last_probe_at(ps)),
        "has_key": bool(ps.spec.auth.keys),  # a key is set, not merely asked for
        "disabled_reason": ps.disabled,
        "circuit_state": ps.circuit,
        "description": ps.spec.description,
        "docs_url": ps.spec.docs_url,
        "endpoints": [endpoint_row(ep, now) for ep in ps.endpoints.values()],
    }


def filter_providers(providers: Iterable[ProviderState], category: Category | None, status: ProviderStatus | None, search: str | None) -> list[ProviderState]:
    needle = search.lower() if search else None
    out = []
    for ps in providers:
        if category is not None and ps.category != category.value:
            continue
        if status is not None and ps.status() is not status:
            continue
        if needle is not None and needle not in ps.name.lower() and needle not in ps.spec.description.lower():
            continue
        out.append(ps)
    return out


def log_entry(r: ProbeResult) -> LogEntry:
    """One probe as a log line of the old `/api/logs` (and `new_log_entry.data`). On the
    hot path (one per probe while a WebSocket client listens): a dict literal, no copies."""
    return {
        "timestamp": iso(r.finished_at),
        "provider": r.provider,
        "category": r.category,
        "endpoint": r.endpoint,
        "status": r.outcome,
        "response_time_ms": ms(r.duration),
        "http_code": r.status_code,
        "attempts": r.attempts,
        "retries": list(r.retries),
        "error_message": r.detail or None,
        "key": r.key_env,
        "slow": r.slow,
    }


def filter_history(history: Iterable[ProbeResult], provider: str | None, endpoint: str | None, outcome: Outcome | None) -> list[ProbeResult]:
    """Matching results, newest first."""
    return [
        r
        for r in reversed(list(history))
        if (provider is None or r.provider == provider) and (endpoint is None or r.endpoint == endpoint) and (outcome is None or r.outcome is outcome)
    ]


def failures_report(failures: Sequence[ProbeResult], limit: int) -> Failures:
    """Error type distribution, top failing providers, recent failures, a hint per type."""
    by_type = Counter(r.outcome for r in failures)
    by_provider = Counter(r.provider for r in failures)
    recent = list(reversed(failures))[:limit]
    return {
        "total": len(failures),
        "error_type_distribution": {o.value: n for o, n in by_type.most_common()},
        "top_failing_providers": [{"provider": p, "failure_count": n} for p, n in by_provider.most_common(TOP_FAILING)],
        "recent_failures": [
            {
                "timestamp": iso(r.finished_at),
                "provider": r.provider,
                "endpoint": r.endpoint,
                "error_type": r.outcome,
                "error_message": r.detail or None,
                "http_code": r.status_code,
                "retry_attempted": bool(r.retries),
                "retries": list(r.retries),
            }
            for r in recent
        ],
        "remediation_suggestions": [{"error_type": o, "count": n, "suggestion": h} for o, n in by_type.most_common() if (h := hint(o)) is not None],
    }


def rate_limit_rows(state: State, provider: str | None, now: float) -> list[RateLimit]:
    rows: list[RateLimit] = []
    for ps in state.providers.values():
        if provider is not None and ps.name != provider:
            continue
        for q in ps.all_quotas(now).values():
            pct = quota_percentage(q)
            rows.append(
                {
                    "provider": ps.name,
                    "category": ps.category,
                    "scope": q.scope,
                    "limit_type": q.scope,
                    "limit_value": q.limit,
                    "remaining": q.remaining,
                    "current_usage": None if q.limit is None or q.remaining is None else max(q.limit - q.remaining, 0),
                    "percentage": pct,
                    "reset_at": iso(q.reset_at),
                    "status": quota_status(pct),
                }
            )
    return rows


def key_rows(config: Config, state: State) -> list[KeyConfig]:
    """Per provider with keys (disabled ones too: that is where a missing key shows): env
    var names, set or not, valid flag, masked form. Never a value."""
    rows: list[KeyConfig] = []
    for p in (*config.providers, *(d.provider for d in config.disabled)):
        if not p.auth.env:
            continue
        values = {k.env: k.value for k in p.auth.keys}
        valid = state.providers[p.name].keys if p.name in state.providers else {}
        keys: list[KeyState] = [
            {"env": env, "set": env in values, "valid": bool(valid.get(env, False)), "masked": mask(values[env]) if env in values else None}
            for env in p.auth.env
        ]
        first = next((k for k in keys if k["set"] and k["valid"]), None)
        status: KeyStatus = "active" if first else "missing" if not values else "invalid"
        rows.append(
            {
                "provider": p.name,
                "category": p.category.value,
                "auth_type": p.auth.type.value,
                "optional": p.auth.optional,
                "key_masked": first["masked"] if first else None,
                "status": status,
                "keys": keys,
            }
        )
    return rows


def key_test_row(test: KeyTest) -> KeyTestEntry:
    """One key of `POST /api/config/keys/test`: by env var name and masked, never its value."""
    r = test.result
    if r is None:
        return {
            "env": test.env,
            "set": False,
            "masked": None,
            "valid": False,
            "outcome": None,
            "http_code": None,
            "response_time_ms": None,
            "detail": "env var not set",
        }
    return {
        "env": test.env,
        "set": True,
        "masked": test.masked,
        "valid": r.key_checks[0].valid if r.key_checks else None,
        "outcome": r.outcome,
        "http_code": r.status_code,
        "response_time_ms": ms(r.duration),
        "detail": r.detail or None,
    }


def _duration(seconds: float) -> str:
    s = int(seconds) if float(seconds).is_integer() else seconds
    return f"{s}s"


def schedule_rows(state: State, jobs: Sequence[JobInfo]) -> list[Schedule]:
    by_provider: dict[str, dict[str, JobInfo]] = {}
    for job in jobs:
        by_provider.setdefault(job.provider, {})[job.endpoint] = job
    rows: list[Schedule] = []
    for ps in state.providers.values():
        pjobs = by_provider.get(ps.name, {})
        runs = ps.schedule_runs
        total = sum(runs.values())
        on_time, late, missed = runs[ScheduleResult.ON_TIME], runs[ScheduleResult.LATE], runs[ScheduleResult.MISSED]
        endpoints: list[EndpointSchedule] = []
        for ep in ps.endpoints.values():
            ep_job = pjobs.get(ep.name)
            endpoints.append(
                {
                    "endpoint": ep.name,
                    "interval_seconds": ep.spec.interval,
                    "jitter_seconds": ep.spec.jitter,
                    "last_run": iso(ep.last.finished_at) if ep.last else None,
                    "next_run": iso(ep_job.next_run_at) if ep_job else None,
                    "scheduled": ep_job is not None,
                }
            )
        nexts = [j.next_run_at for j in pjobs.values() if j.next_run_at is not None]
        intervals = sorted({ep.spec.interval for ep in ps.endpoints.values()})
        status: ScheduleStatus = "paused" if pjobs and not nexts else "active" if pjobs else "unscheduled"
        rows.append(
            {
                "provider": ps.name,
                "category": ps.category,
                "schedule": ", ".join(_duration(i) for i in intervals),
                "last_run": iso(last_probe_at(ps)),
                "next_run": iso(min(nexts)) if nexts else None,
                "on_time_percentage": round(100 * on_time / total, 2) if total else 100.0,
                "runs": {"on_time": on_time, "late": late, "missed": missed},
                "status": status,
                "endpoints": endpoints,
            }
        )
    return rows


def freshness_status(age: float | None, max_age: float) -> FreshnessStatus:
    if age is None:
        return "unknown"
    if age > max_age:
        return "stale"
    return "aging" if age > 0.75 * max_age else "fresh"


def freshness_rows(state: State, now: float) -> list[Freshness]:
    """Per endpoint: age of the newest data against its bound (the configured max age, or
    two probe intervals for endpoints without a freshness rule)."""
    rows: list[Freshness] = []
    for ep in state.endpoints():
        age = ep.data_age(now)
        bound = ep.max_age if ep.max_age is not None else 2 * ep.spec.interval
        rows.append(
            {
                "provider": ep.provider,
                "category": ep.category,
                "endpoint": ep.name,
                "fetch_time": iso(ep.last_success_at),
                "data_timestamp": iso(ep.data_timestamp),
                "age_seconds": _round(age),
                "staleness_minutes": None if age is None else round(age / 60, 2),
                "max_age_seconds": bound,
                "ttl_minutes": round(bound / 60, 2),
                "freshness_rule": ep.max_age is not None,
                "status": freshness_status(age, bound),
            }
        )
    return rows


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
