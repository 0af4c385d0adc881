"""Health and schedule-compliance history for `/api/charts/*`.

Two sources: a bounded in-memory series sampled from `State` every `interval` seconds
(always on), and Prometheus's HTTP API when `PROMETHEUS_URL` is set (longer history that
survives restarts). A Prometheus failure falls back to memory with a warning."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from ...families import PROBES, RUNS, STATUS
from ...model import Outcome, ProviderStatus, ScheduleResult
from ...state import State
from .models import ComplianceSeries, HealthSeries
from .views import iso

log = structlog.get_logger()

SAMPLE_INTERVAL = 60.0
MAX_SAMPLES = 1440  # a day at one sample a minute
MAX_POINTS = 240  # points per Prometheus series
PROMETHEUS_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ProviderSample:
    status: ProviderStatus
    success: int  # cumulative successful probes
    probes: int  # cumulative probes that sent a request
    on_time: int  # cumulative scheduled runs by result
    late: int
    missed: int


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    providers: dict[str, ProviderSample]


def take_sample(state: State, now: float) -> Sample:
    out = {}
    for name, ps in state.providers.items():
        success = probes = 0
        for ep in ps.endpoints.values():
            success += ep.outcomes[Outcome.SUCCESS]
            probes += sum(n for o, n in ep.outcomes.items() if not o.skipped)
        runs = ps.schedule_runs
        out[name] = ProviderSample(ps.status(), success, probes, runs[ScheduleResult.ON_TIME], runs[ScheduleResult.LATE], runs[ScheduleResult.MISSED])
    return Sample(now, out)


def _pick(sample: Sample, provider: str | None) -> list[ProviderSample]:
    if provider is None:
        return list(sample.providers.values())
    return [sample.providers[provider]] if provider in sample.providers else []


def _pct(num: int, den: int) -> float | None:
    return round(100 * num / den, 2) if den > 0 else None


def _window(samples: Sequence[Sample], since: float) -> list[tuple[Sample | None, Sample]]:
    """(previous, sample) pairs for the samples at or after `since`."""
    pairs = []
    prev: Sample | None = None
    for s in samples:
        if s.at >= since:
            pairs.append((prev, s))
        prev = s
    return pairs


def health_series(samples: Sequence[Sample], since: float, provider: str | None = None) -> HealthSeries:
    """Per sample: the success rate of the probes since the previous sample (None when
    none ran) and how many providers were online, degraded, offline."""
    out: HealthSeries = {"timestamps": [], "success_rate": [], "online": [], "degraded": [], "offline": [], "unknown": []}
    by_status = _by_status(out)
    for prev, s in _window(samples, since):
        now = _pick(s, provider)
        succ = sum(p.success for p in now)
        total = sum(p.probes for p in now)
        if prev is not None:
            old = _pick(prev, provider)
            succ -= sum(p.success for p in old)
            total -= sum(p.probes for p in old)
        out["timestamps"].append(iso(s.at))
        out["success_rate"].append(_pct(succ, total) if prev is not None else None)
        for status, counts in by_status.items():
            counts.append(sum(1 for p in now if p.status is status))
    return out


def _by_status(series: HealthSeries) -> dict[ProviderStatus, list[int | None]]:
    """The series' count lists by status (the same list objects)."""
    return {
        ProviderStatus.ONLINE: series["online"],
        ProviderStatus.DEGRADED: series["degraded"],
        ProviderStatus.OFFLINE: series["offline"],
        ProviderStatus.UNKNOWN: series["unknown"],
    }


def compliance_series(samples: Sequence[Sample], since: float, provider: str | None = None) -> ComplianceSeries:
    """Per sample: percent of scheduled runs since the previous sample that started on time."""
    out: ComplianceSeries = {"timestamps": [], "compliance_percentage": [], "on_time": [], "late": [], "missed": []}
    for prev, s in _window(samples, since):
        now = _pick(s, provider)
        counts = [sum(p.on_time for p in now), sum(p.late for p in now), sum(p.missed for p in now)]
        if prev is not None:
            old = _pick(prev, provider)
            counts = [counts[0] - sum(p.on_time for p in old), counts[1] - sum(p.late for p in old), counts[2] - sum(p.missed for p in old)]
        out["timestamps"].append(iso(s.at))
        out["compliance_percentage"].append(_pct(counts[0], sum(counts)) if prev is not None else None)
        out["on_time"].append(counts[0] if prev is not None else 0)
        out["late"].append(counts[1] if prev is not None else 0)
        out["missed"].append(counts[2] if prev is not None else 0)
    return out


class HistoryRecorder:
    """Samples `State` every `interval` seconds into a ring of `max_samples`.

    `sleep` waits out one interval: `asyncio.sleep`, or in tests a timer they advance by
    hand, so no test waits for (or depends on) the wall clock."""

    def __init__(
        self,
        state: State,
        *,
        interval: float = SAMPLE_INTERVAL,
        max_samples: int = MAX_SAMPLES,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.state = state
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.samples: deque[Sample] = deque(maxlen=max_samples)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        s = take_sample(self.state, self.clock())
        self.samples.append(s)
        return s

    def start(self) -> None:
        self.sample()  # a baseline, so the first periodic sample has something to diff against
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self.sleep(self.interval)
            try:
                self.sample()
            except Exception:  # keep sampling
                log.exception("history_sample_failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# ---------------------------------------------------------------- Prometheus


class PrometheusError(Exception):
    """Prometheus could not answer; the message is safe to show (no URL credentials)."""


def promql_selector(provider: str | None, extra: str = "") -> str:
    parts = [extra] if extra else []
    if provider is not None:
        escaped = provider.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'provider="{escaped}"')
    return "{" + ",".join(parts) + "}"


def step_for(hours: int) -> int:
    return max(60, math.ceil(hours * 3600 / MAX_POINTS))


def align(values: Iterable[tuple[float, str]], grid: Sequence[float]) -> list[float | None]:
    """Values of one matrix series on the grid of timestamps; None where missing or NaN."""
    by_ts = {}
    for ts, raw in values:
        try:
            v = float(raw)
        except (TypeError, ValueError):
            continue
        by_ts[round(float(ts))] = None if math.isnan(v) or math.isinf(v) else round(v, 2)
    return [by_ts.get(round(t)) for t in grid]


class PrometheusHistory:
    def __init__(self, url: str, session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession, clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self.session_factory = session_factory
        self.clock = clock

    def _grid(self, hours: int) -> tuple[float, float, int, list[float]]:
        step = step_for(hours)
        end = math.floor(self.clock() / step) * step
        start = end - math.floor(hours * 3600 / step) * step
        n = int((end - start) / step) + 1
        return start, end, step, [start + i * step for i in range(n)]

    async def query_range(self, expr: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        return await self._get("query_range", {"query": expr, "start": str(start), "end": str(end), "step": str(step)})

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at the clock's now: `[{"metric": {...}, "value": [ts, "v"]}, ...]`."""
        return await self._get("query", {"query": expr, "time": str(self.clock())})

    async def _get(self, api: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            timeout = aiohttp.ClientTimeout(total=PROMETHEUS_TIMEOUT)
            async with self.session_factory() as session, session.get(f"{self.url}/api/v1/{api}", params=params, timeout=timeout) as resp:
                if resp.status != 200:
                    raise PrometheusError(f"Prometheus answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except TimeoutError:
            raise PrometheusError(f"Prometheus did not answer within {PROMETHEUS_TIMEOUT:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise PrometheusError(f"Prometheus query failed ({type(e).__name__})") from None
        if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
            raise PrometheusError("Prometheus answered an error")
        result = body["data"].get("result")
        if not isinstance(result, list):
            raise PrometheusError("Prometheus answered no result list")
        return result

    async def health(self, hours: int, provider: str | None) -> HealthSeries:
        start, end, step, grid = self._grid(hours)
        window = f"{max(step, 300)}s"
        sel_ok = promql_selector(provider, 'outcome="success"')
        skipped = "|".join(o.value for o in Outcome if o.skipped)  # no request sent: not a success rate's business
        sel_all = promql_selector(provider, f'outcome!~"{skipped}"')
        rate_expr = f"100 * sum(increase({PROBES.name}{sel_ok}[{window}])) / sum(increase({PROBES.name}{sel_all}[{window}]))"
        status_expr = f"sum by (status) ({STATUS.name}{promql_selector(provider)})"
        rate, statuses = await asyncio.gather(self.query_range(rate_expr, start, end, step), self.query_range(status_expr, start, end, step))
        out: HealthSeries = {
            "timestamps": [iso(t) for t in grid],
            "success_rate": align(rate[0].get("values", []), grid) if rate else [None] * len(grid),
            "online": [],
            "degraded": [],
            "offline": [],
            "unknown": [],
        }
        values = {s.get("metric", {}).get("status"): s.get("values", []) for s in statuses}
        for status, counts in _by_status(out).items():
            counts.extend(None if v is None else int(v) for v in align(values.get(status.value, []), grid))
        return out

    async def compliance(self, hours: int, provider: str | None) -> ComplianceSeries:
        start, end, step, grid = self._grid(hours)
        window = f"{max(step, 300)}s"
        expr = f"sum by (result) (increase({RUNS.name}{promql_selector(provider)}[{window}]))"
        series = {s.get("metric", {}).get("result"): align(s.get("values", []), grid) for s in await self.query_range(expr, start, end, step)}

        def runs(result: ScheduleResult) -> list[int | None]:
            return [None if v is None else round(v) for v in series.get(result.value, [None] * len(grid))]

        on_time, late, missed = runs(ScheduleResult.ON_TIME), runs(ScheduleResult.LATE), runs(ScheduleResult.MISSED)
        pct: list[float | None] = []
        for n_on_time, n_late, n_missed in zip(on_time, late, missed, strict=True):
            total = (n_on_time or 0) + (n_late or 0) + (n_missed or 0)
            pct.append(_pct(n_on_time or 0, total))
        return {"timestamps": [iso(t) for t in grid], "on_time": on_time, "late": late, "missed": missed, "compliance_percentage": pct}
