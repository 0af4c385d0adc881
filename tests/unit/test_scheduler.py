"""The scheduler on a virtual-time loop (tests/clock.py): spread, trigger, pause,
accounting. Time is advanced, never slept, so every time and delay is exact."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from exporter.config import Config, parse_config
from exporter.model import Outcome, ProbeResult, ScheduleResult, ScheduleRun
from exporter.scheduler import Scheduler, classify_delay
from tests.clock import WALL_AT_ZERO, virtual_loop, virtual_time

ON_TIME, LATE, MISSED = ScheduleResult.ON_TIME, ScheduleResult.LATE, ScheduleResult.MISSED


def many_endpoints(n: int, interval: str = "1m", jitter: str = "10%") -> Config:
    per_provider = 50
    providers = [
        {
            "name": f"p{i}",
            "category": "market_data",
            "base_url": "https://example.test",
            "interval": interval,
            "jitter": jitter,
            "timeout": "1s",
            "endpoints": [{"name": f"e{j}"} for j in range(per_provider)],
        }
        for i in range(n // per_provider)
    ]
    return parse_config({"providers": providers}, env={})


def one_endpoint(interval: str) -> Config:
    endpoint = {"name": "e", "interval": interval, "timeout": "1s", "jitter": "0s"}
    return parse_config({"providers": [{"name": "p", "category": "news", "base_url": "https://example.test", "endpoints": [endpoint]}]}, env={})


class Recorder:
    """The scheduler's two callbacks, noting the loop time of each call."""

    def __init__(self, hold: asyncio.Event | None = None, pause_once: float | None = None) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.runs: list[tuple[float, ScheduleRun]] = []
        self.hold = hold
        self.pause_once = pause_once  # the first probe is rate limited for this long
        self.loop = virtual_loop()

    async def probe(self, provider: str, endpoint: str) -> ProbeResult:
        self.calls.append((provider, endpoint, self.loop.time()))
        if self.hold is not None:
            await self.hold.wait()
        now = self.loop.wall()
        if self.pause_once is not None:
            pause_until, self.pause_once = now + self.pause_once, None
            return ProbeResult(provider, "market_data", endpoint, Outcome.RATE_LIMITED, now, now, pause_until=pause_until)
        return ProbeResult(provider, "market_data", endpoint, Outcome.SUCCESS, now, now)

    def on_run(self, run: ScheduleRun) -> None:
        self.runs.append((self.loop.time(), run))

    def times(self, endpoint: str = "e") -> list[float]:
        return [t for _, e, t in self.calls if e == endpoint]


def scheduler(rec: Recorder, seed: int = 1) -> Scheduler:
    return Scheduler(rec.probe, rec.on_run, rng=random.Random(seed), monotonic=rec.loop.time, wall=rec.loop.wall)


def run(delay: float | None, result: ScheduleResult, provider: str = "p", endpoint: str = "e") -> ScheduleRun:
    return ScheduleRun(provider, endpoint, delay, result)


@pytest.mark.parametrize(("delay", "result"), [(0.0, "on_time"), (0.999, "on_time"), (1.01, "late"), (30, "late")])
def test_classify_delay(delay: float, result: str) -> None:
    assert classify_delay(delay) == result


@pytest.mark.parametrize(
    ("endpoints", "jitter", "window", "per_second", "per_ms"),
    [
        # The jitter (10 % of 1 m) is wider than the 5 s start-up spread: 6 s.
        (500, "10%", 6.0, [101, 81, 78, 83, 80, 77], {1: 467, 2: 15, 3: 1}),
        # No jitter: the 5 s start-up spread.
        (500, "0s", 5.0, [113, 102, 102, 86, 97], {1: 462, 2: 16, 3: 2}),
        # More endpoints than 5 s takes at 200 a second: 15 s at that rate.
        (3000, "0s", 15.0, [230, 191, 213, 236, 189, 209, 193, 198, 186, 187, 178, 190, 200, 200, 200], {1: 2448, 2: 249, 3: 18}),
    ],
    ids=["jitter", "spread", "startup-rate"],
)
@virtual_time
async def test_first_runs_spread_over_the_startup_window_not_one_millisecond(
    endpoints: int, jitter: str, window: float, per_second: list[int], per_ms: dict[int, int]
) -> None:
    rec = Recorder()
    sched = scheduler(rec, seed=7)
    sched.apply(many_endpoints(endpoints, jitter=jitter))
    sched.start()
    try:
        await asyncio.sleep(window)
        fired = sorted(t for _, _, t in rec.calls)
        assert len(fired) == endpoints and fired[0] >= 0.0 and fired[-1] <= window
        # Each fired at its planned time to the float: no delay, nothing late or missed.
        assert Counter(r for _, r in rec.runs) == Counter(run(0.0, ON_TIME, p, e) for p, e, _ in rec.calls)
        # Spread over the whole window, not bunched at its start (the exact figures are
        # random.Random(7)'s; any seed gives about these)...
        assert fired[-1] - fired[0] > window - 1.0
        assert [n for _, n in sorted(Counter(int(t) for t in fired).items())] == per_second
        # ...and no more than three in one millisecond.
        counts = Counter(int(t * 1000) for t in fired)
        assert max(counts.values()) <= 3
        assert Counter(counts.values()) == per_ms
    finally:
        sched.shutdown()


@virtual_time
async def test_trigger_runs_one_provider_now_and_accounts_on_time() -> None:
    rec = Recorder()
    sched = scheduler(rec)
    sched.apply(many_endpoints(100))
    sched.start()
    try:
        await asyncio.sleep(2.5)  # some first runs (spread over 6 s) went already
        before = len(rec.runs)
        hit = sched.trigger("p1")
        assert len(hit) == 50 and all(h.startswith("p1/") for h in hit)
        assert sched.trigger("nope") == []
        await asyncio.sleep(0.5)
        at_trigger = [(p, e) for p, e, t in rec.calls if t == 2.5]
        assert sorted(at_trigger) == sorted(("p1", f"e{j}") for j in range(50))
        triggered = [r for t, r in rec.runs[before:] if t == 2.5]
        assert sorted(triggered, key=lambda r: r.endpoint) == sorted((run(0.0, ON_TIME, "p1", f"e{j}") for j in range(50)), key=lambda r: r.endpoint)
        # Their schedule starts over from the trigger: next runs 1 m later, plus jitter.
        nexts = [j.next_run_at - WALL_AT_ZERO for j in sched.jobs() if j.provider == "p1" and j.next_run_at is not None]
        assert len(nexts) == 50 and all(62.5 <= t <= 68.5 for t in nexts)
    finally:
        sched.shutdown()


@pytest.mark.parametrize(
    ("pause_for", "call_times"),
    [
        (120.0, [0.0, 120.0, 122.0, 124.0]),  # outlasts the 2 s interval: runs resume at its end
        (1.0, [0.0, 2.0, 4.0, 6.0]),  # ends before the next run: the interval stands
    ],
    ids=["outlasts-interval", "ends-before-next-run"],
)
@virtual_time
async def test_rate_limited_result_pauses_the_endpoint_until_its_reset(pause_for: float, call_times: list[float]) -> None:
    rec = Recorder(pause_once=pause_for)
    sched = scheduler(rec)
    sched.apply(one_endpoint("2s"))
    sched.start()
    try:
        sched.trigger("p", "e")  # t=0: the probe answers rate limited, reset at t=pause_for
        await asyncio.sleep(1.0)
        (job,) = sched.jobs()
        assert job.next_run_at == WALL_AT_ZERO + call_times[1]
        await asyncio.sleep(call_times[1] - 1.0 - 0.001)
        assert rec.times() == [0.0]  # not a millisecond early
        await asyncio.sleep(call_times[-1] - call_times[1] + 0.001 + 0.5)
        assert rec.times() == call_times
        assert [r for _, r in rec.runs] == [run(0.0, ON_TIME)] * len(call_times)
    finally:
        sched.shutdown()


@virtual_time
async def test_trigger_ends_a_rate_limit_pause() -> None:
    rec = Recorder(pause_once=120.0)
    sched = scheduler(rec)
    sched.apply(one_endpoint("2s"))
    sched.start()
    try:
        sched.trigger("p", "e")
        await asyncio.sleep(10.0)
        sched.trigger("p", "e")
        await asyncio.sleep(3.0)
        assert rec.times() == [0.0, 10.0, 12.0]
    finally:
        sched.shutdown()


@virtual_time
async def test_a_run_still_going_makes_the_next_one_missed() -> None:
    hold = asyncio.Event()
    rec = Recorder(hold=hold)
    sched = scheduler(rec)
    sched.apply(one_endpoint("1m"))
    sched.start()
    try:
        sched.trigger("p", "e")
        await asyncio.sleep(1.0)
        sched.trigger("p", "e")  # the run of t=0 still waits on `hold`
        await asyncio.sleep(1.0)
        assert rec.times() == [0.0]
        assert rec.runs == [(0.0, run(0.0, ON_TIME)), (1.0, run(None, MISSED))]
        hold.set()
        await asyncio.sleep(60.0)  # t=62: the next run was planned a minute after the missed one
        assert rec.times() == [0.0, 61.0]
    finally:
        sched.shutdown()


@virtual_time
async def test_apply_keeps_unchanged_jobs_and_removes_gone_ones() -> None:
    rec = Recorder()
    sched = scheduler(rec)
    sched.apply(many_endpoints(100))
    before = {(j.provider, j.endpoint): j.next_run_at for j in sched.jobs()}
    sched.apply(many_endpoints(50))
    after = {(j.provider, j.endpoint): j.next_run_at for j in sched.jobs()}
    assert set(after) == {k for k in before if k[0] == "p0"}
    assert all(after[k] == before[k] for k in after)
    sched.shutdown()


@virtual_time
async def test_runs_follow_the_interval_and_fall_behind_without_bursts() -> None:
    rec = Recorder()
    loop = rec.loop
    sched = scheduler(rec)
    sched.apply(one_endpoint("2m"))
    sched.start()
    try:
        sched.trigger("p", "e")
        await asyncio.sleep(300.0)
        assert rec.times() == [0.0, 120.0, 240.0]
        assert rec.runs == [(t, run(0.0, ON_TIME)) for t in (0.0, 120.0, 240.0)]

        # The loop is held from t=300 to t=395: the run planned at t=360 starts 35 s
        # late (under half an interval), so it runs and counts as late.
        loop.block(95.0)
        await asyncio.sleep(5.0)
        assert rec.times()[3:] == [395.0]
        assert rec.runs[3:] == [(395.0, run(35.0, LATE))]
        assert sched.jobs()[0].next_run_at == WALL_AT_ZERO + 480.0  # fixed rate: 360 + 120

        # Held from t=400 to t=700: the run planned at t=480 is 220 s late, missed; the
        # one of t=600 is skipped too (missed), not replayed in a burst; t=720 is next.
        loop.block(300.0)
        await asyncio.sleep(1.0)
        assert rec.times()[4:] == []
        assert rec.runs[4:] == [(700.0, run(None, MISSED)), (700.0, run(None, MISSED))]
        assert sched.jobs()[0].next_run_at == WALL_AT_ZERO + 720.0
        await asyncio.sleep(29.0)
        assert rec.times()[4:] == [720.0]
        assert rec.runs[6:] == [(720.0, run(0.0, ON_TIME))]
    finally:
        sched.shutdown()


@virtual_time
async def test_a_stall_of_five_intervals_counts_five_missed_runs() -> None:
    """Every run that could not happen is counted, however long the stall: the loop held
    from t=10 to t=610 misses the runs planned at 120, 240, 360, 480 and 600."""
    rec = Recorder()
    sched = scheduler(rec)
    sched.apply(one_endpoint("2m"))
    sched.start()
    try:
        sched.trigger("p", "e")
        await asyncio.sleep(10.0)
        rec.loop.block(600.0)
        await asyncio.sleep(1.0)
        missed = [r for _, r in rec.runs if r.result is MISSED]
        assert sum(r.count for r in missed) == 5
        assert sched.jobs()[0].next_run_at == WALL_AT_ZERO + 720.0
    finally:
        sched.shutdown()
