"""One timer per endpoint on the event loop: interval with jitter, a spread first run,
accounting of how late each run started, rate-limit pauses and manual triggers.

Why not APScheduler: per run it takes a lock, computes the next fire time through
timezone-aware datetimes, updates a sorted job store, wraps the coroutine in an
executor and builds event objects. Measured (bench/), that was a fifth of a keep-alive
probe's CPU and the main source of late starts at 2,000 endpoints. An endpoint here is
a `loop.call_at` handle that starts the probe itself: a few microseconds per run.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from .config import Config, Endpoint
from .model import JobInfo, ProbeResult, ScheduleResult, ScheduleRun

log = structlog.get_logger()

LATE_AFTER = 1.0  # seconds after its planned time a run counts as late
# The first runs are spread over this much (or the endpoint's jitter, if larger), so a
# restart with 500 endpoints does not fire them all in the same millisecond...
FIRST_RUN_SPREAD = 5.0
# ...and, with thousands of endpoints, over as long as it takes at this rate, so that
# start-up is no burst beyond what steady state asks (capped by each interval).
STARTUP_RATE = 200.0


def job_id(provider: str, endpoint: str) -> str:
    return f"{provider}/{endpoint}"


def classify_delay(delay: float, late_after: float = LATE_AFTER) -> ScheduleResult:
    return ScheduleResult.LATE if delay > late_after else ScheduleResult.ON_TIME


class _Job:
    """One endpoint's timer. Times are the loop's monotonic clock."""

    __slots__ = ("base", "endpoint", "handle", "planned", "provider", "spec", "task")

    def __init__(self, provider: str, spec: Endpoint, base: float) -> None:
        self.provider = provider
        self.endpoint = spec.name
        self.spec = spec
        self.base = base  # the unjittered time of the next run
        self.planned = base  # base plus this run's jitter
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class Scheduler:
    def __init__(
        self,
        run_probe: Callable[[str, str], Awaitable[ProbeResult | None]],
        on_run: Callable[[ScheduleRun], None],
        *,
        late_after: float = LATE_AFTER,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`monotonic` plans jobs applied before start() (after it, the loop's clock
        does); `wall` turns loop times into timestamps and reads providers' reset times.
        Neither is read per run. Tests pass a virtual-time loop's clocks for both."""
        self._run_probe = run_probe
        self._on_run = on_run
        self._late_after = late_after
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._wall_clock = wall
        self._jobs: dict[str, _Job] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ clocks

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else self._monotonic()

    def _wall(self, mono: float) -> float:
        return mono - self._now() + self._wall_clock()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        offset = self._loop.time() - self._monotonic()  # jobs applied before start used that clock
        for job in self._jobs.values():
            job.base += offset
            job.planned += offset
            self._arm(job)

    def shutdown(self) -> None:
        for job in self._jobs.values():
            self._disarm(job)
            if job.running:
                job.task.cancel()  # type: ignore[union-attr]
        self._loop = None

    def apply(self, config: Config) -> None:
        """Add, keep or replace jobs to match the config; jobs of removed endpoints go."""
        now = self._now()
        wanted = {job_id(p.name, ep.name): (p.name, ep) for p in config.providers for ep in p.endpoints}
        for jid in [j for j in self._jobs if j not in wanted]:
            self._disarm(self._jobs.pop(jid))
        spread = max(FIRST_RUN_SPREAD, len(wanted) / STARTUP_RATE)
        for jid, (provider, ep) in wanted.items():
            old = self._jobs.get(jid)
            if old is not None and (old.spec.interval, old.spec.jitter) == (ep.interval, ep.jitter):
                old.spec = ep
                continue
            if old is not None:
                self._disarm(old)
            first = now + self._rng.uniform(0, min(max(ep.jitter, spread), ep.interval))
            job = self._jobs[jid] = _Job(provider, ep, first)
            if self._loop is not None:
                self._arm(job)

    def trigger(self, provider: str | None = None, endpoint: str | None = None) -> list[str]:
        """Run the matching jobs now (this also ends a rate-limit pause); the ids triggered."""
        now = self._now()
        hit = []
        for jid, job in self._jobs.items():
            if (provider is None or job.provider == provider) and (endpoint is None or job.endpoint == endpoint):
                job.base = job.planned = now
                if self._loop is not None:
                    self._arm(job)
                hit.append(jid)
        return hit

    def jobs(self) -> list[JobInfo]:
        return [JobInfo(j.provider, j.endpoint, j.spec.interval, j.spec.jitter, self._wall(j.planned)) for j in self._jobs.values()]

    # ------------------------------------------------------------ timers

    def _arm(self, job: _Job) -> None:
        assert self._loop is not None
        self._disarm(job)
        job.handle = self._loop.call_at(job.planned, self._fire, job)

    @staticmethod
    def _disarm(job: _Job) -> None:
        if job.handle is not None:
            job.handle.cancel()
            job.handle = None

    def _next(self, job: _Job, now: float) -> None:
        """Plan the run after this one: fixed rate, fresh jitter; runs that fell
        behind by more than an interval are skipped, not caught up in a burst."""
        spec = job.spec
        job.base += spec.interval
        if job.base < now:
            behind = math.ceil((now - job.base) / spec.interval)
            job.base += behind * spec.interval
            self._on_run(ScheduleRun(job.provider, job.endpoint, None, ScheduleResult.MISSED, count=behind))
        job.planned = job.base + (self._rng.uniform(0, spec.jitter) if spec.jitter else 0.0)
        self._arm(job)

    def _fire(self, job: _Job) -> None:
        assert self._loop is not None
        job.handle = None
        now = self._loop.time()
        delay = max(now - job.planned, 0.0)
        if job.running or delay > job.spec.interval / 2:
            # The previous run still goes on, or this one is too late to mean anything.
            self._on_run(ScheduleRun(job.provider, job.endpoint, None, ScheduleResult.MISSED))
        else:
            self._on_run(ScheduleRun(job.provider, job.endpoint, delay, classify_delay(delay, self._late_after)))
            job.task = self._loop.create_task(self._run(job))
        self._next(job, now)

    async def _run(self, job: _Job) -> None:
        try:
            result = await self._run_probe(job.provider, job.endpoint)
        except asyncio.CancelledError:
            raise
        except Exception:  # the prober never raises; if it did, keep the schedule alive
            log.exception("probe_crashed", provider=job.provider, endpoint=job.endpoint)
            return
        if result is not None and result.pause_until is not None and self._jobs.get(job_id(job.provider, job.endpoint)) is job:
            self._pause(job, result.pause_until)

    def _pause(self, job: _Job, until: float) -> None:
        """Honour the provider's reset time: the next run waits until then."""
        if self._loop is None:
            return
        until_mono = until - self._wall_clock() + self._loop.time()
        if job.planned < until_mono:
            job.base = job.planned = until_mono
            self._arm(job)
            log.info(
                "probe_paused",
                provider=job.provider,
                endpoint=job.endpoint,
                until=datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
                reason="rate_limited",
            )
