"""One APScheduler job per endpoint: interval with jitter, a spread first run, accounting
of how late each run started, rate-limit pauses and manual triggers."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config, Endpoint
from .model import ProbeResult, ScheduleRun

log = structlog.get_logger()

LATE_AFTER = 1.0  # seconds after its planned time a run counts as late
# The first runs are spread over this much (or the endpoint's jitter, if larger), so a
# restart with 500 endpoints does not fire them all in the same millisecond...
FIRST_RUN_SPREAD = 5.0
# ...and, with thousands of endpoints, over as long as it takes at this rate, so that
# start-up is no burst beyond what steady state asks (capped by each interval).
STARTUP_RATE = 200.0


@dataclass(frozen=True, slots=True)
class JobInfo:
    provider: str
    endpoint: str
    interval: float
    jitter: float
    next_run_at: float | None  # unix seconds; None while paused


def job_id(provider: str, endpoint: str) -> str:
    return f"{provider}/{endpoint}"


def classify_delay(delay: float, late_after: float = LATE_AFTER) -> str:
    return "late" if delay > late_after else "on_time"


class Scheduler:
    def __init__(
        self,
        run_probe: Callable[[str, str], Awaitable[ProbeResult | None]],
        on_run: Callable[[ScheduleRun], None],
        *,
        late_after: float = LATE_AFTER,
        rng: random.Random | None = None,
    ) -> None:
        self._run_probe = run_probe
        self._on_run = on_run
        self._late_after = late_after
        self._rng = rng or random.Random()
        self._planned: dict[str, float] = {}
        self._specs: dict[str, Endpoint] = {}
        self._aps = AsyncIOScheduler(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1})
        self._aps.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    def start(self) -> None:
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def apply(self, config: Config) -> None:
        """Add, keep or replace jobs to match the config; jobs of removed endpoints go."""
        now = datetime.now(timezone.utc)
        wanted: dict[str, tuple[str, Endpoint]] = {
            job_id(p.name, ep.name): (p.name, ep) for p in config.providers for ep in p.endpoints
        }
        for jid in list(self._specs):
            if jid not in wanted:
                self._remove(jid)
        spread = max(FIRST_RUN_SPREAD, len(wanted) / STARTUP_RATE)
        for jid, (provider, ep) in wanted.items():
            old = self._specs.get(jid)
            if old is not None and (old.interval, old.jitter) == (ep.interval, ep.jitter):
                self._specs[jid] = ep
                continue
            if old is not None:
                self._remove(jid)
            first = now + timedelta(seconds=self._rng.uniform(0, min(max(ep.jitter, spread), ep.interval)))
            self._aps.add_job(
                self._run,
                IntervalTrigger(seconds=ep.interval, jitter=ep.jitter or None, start_date=first, timezone=timezone.utc),
                args=(provider, ep.name),
                id=jid,
                name=jid,
                next_run_time=first,
                # A run that cannot start within half its interval is missed, not late.
                misfire_grace_time=max(int(ep.interval / 2), 1),
                replace_existing=True,
            )
            self._specs[jid] = ep

    def _remove(self, jid: str) -> None:
        self._specs.pop(jid, None)
        self._planned.pop(jid, None)
        if self._aps.get_job(jid) is not None:
            self._aps.remove_job(jid)

    def trigger(self, provider: str | None = None, endpoint: str | None = None) -> list[str]:
        """Run the matching jobs now (also ends a rate-limit pause); the ids triggered."""
        now = datetime.now(timezone.utc)
        hit = []
        for jid in self._specs:
            p, e = jid.split("/", 1)
            if (provider is None or p == provider) and (endpoint is None or e == endpoint):
                job = self._aps.get_job(jid)
                if job is not None:
                    job.modify(next_run_time=now)
                    hit.append(jid)
        return hit

    def jobs(self) -> list[JobInfo]:
        out = []
        for jid, ep in self._specs.items():
            job = self._aps.get_job(jid)
            nxt = job.next_run_time.timestamp() if job is not None and job.next_run_time else None
            p, e = jid.split("/", 1)
            out.append(JobInfo(p, e, ep.interval, ep.jitter, nxt))
        return out

    def _on_event(self, event: JobEvent) -> None:
        jid = event.job_id
        if jid not in self._specs:
            return
        if event.code == EVENT_JOB_SUBMITTED:
            self._planned[jid] = event.scheduled_run_times[-1].timestamp()  # type: ignore[attr-defined]
            return
        # A misfire beyond the grace time, or a run skipped because the last one still runs.
        provider, endpoint = jid.split("/", 1)
        self._on_run(ScheduleRun(provider, endpoint, None, "missed"))

    async def _run(self, provider: str, endpoint: str) -> None:
        jid = job_id(provider, endpoint)
        planned = self._planned.pop(jid, None)
        if planned is not None:
            delay = max(time.time() - planned, 0.0)
            self._on_run(ScheduleRun(provider, endpoint, delay, classify_delay(delay, self._late_after), planned))
        try:
            result = await self._run_probe(provider, endpoint)
        except Exception:  # noqa: BLE001 - the prober never raises; if it did, keep the schedule alive
            log.exception("probe_crashed", provider=provider, endpoint=endpoint)
            return
        if result is not None and result.pause_until is not None:
            self._pause(jid, result.pause_until)

    def _pause(self, jid: str, until: float) -> None:
        """Honour the provider's reset time: the next run waits until then."""
        job: Job | None = self._aps.get_job(jid)
        if job is None or job.next_run_time is None:
            return
        if job.next_run_time.timestamp() < until:
            job.modify(next_run_time=datetime.fromtimestamp(until, timezone.utc))
            provider, endpoint = jid.split("/", 1)
            log.info("probe_paused", provider=provider, endpoint=endpoint, until=round(until, 3), reason="rate_limited")
