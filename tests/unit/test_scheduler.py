"""The scheduler on a real event loop: spread, trigger, pause, accounting."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from exporter.config import Config, parse_config
from exporter.model import Outcome, ProbeResult, ScheduleRun
from exporter.scheduler import Scheduler, classify_delay


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


class Recorder:
    def __init__(self, hold: asyncio.Event | None = None, pause_for: float | None = None) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.runs: list[ScheduleRun] = []
        self.hold = hold
        self.pause_for = pause_for

    async def probe(self, provider: str, endpoint: str) -> ProbeResult:
        self.calls.append((provider, endpoint, time.time()))
        if self.hold is not None:
            await self.hold.wait()
        now = time.time()
        return ProbeResult(provider, "market_data", endpoint, Outcome.RATE_LIMITED if self.pause_for else Outcome.SUCCESS, now, now,
                           pause_until=now + self.pause_for if self.pause_for else None)

    def on_run(self, run: ScheduleRun) -> None:
        self.runs.append(run)


async def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("delay", "result"), [(0.0, "on_time"), (0.999, "on_time"), (1.01, "late"), (30, "late")])
def test_classify_delay(delay: float, result: str) -> None:
    assert classify_delay(delay) == result


async def test_500_endpoints_do_not_fire_in_the_same_millisecond() -> None:
    rec = Recorder()
    sched = Scheduler(rec.probe, rec.on_run, rng=random.Random(7))
    sched.apply(many_endpoints(500))
    firsts = sorted(j.next_run_at for j in sched.jobs() if j.next_run_at is not None)
    assert len(firsts) == 500
    per_ms = Counter(int(t * 1000) for t in firsts)
    assert max(per_ms.values()) <= 3
    # Spread over the jitter window (6 s for a 1 m interval at 10 %), not bunched at its start.
    assert firsts[-1] - firsts[0] > 5.0
    sched.shutdown()


async def test_trigger_runs_one_provider_now_and_accounts_on_time() -> None:
    rec = Recorder()
    sched = Scheduler(rec.probe, rec.on_run)
    sched.apply(many_endpoints(100))
    sched.start()
    try:
        hit = sched.trigger("p1")
        assert len(hit) == 50 and all(h.startswith("p1/") for h in hit)
        # (Other jobs' spread first runs may fire meanwhile: look at p1 only.)
        await wait_for(lambda: sum(p == "p1" for p, _, _ in rec.calls) == 50)
        await wait_for(lambda: sum(r.provider == "p1" for r in rec.runs) == 50)
        p1_runs = [r for r in rec.runs if r.provider == "p1"]
        assert {r.result for r in p1_runs} == {"on_time"}
        assert all(r.delay is not None and r.delay < 1.0 for r in p1_runs)
        assert sched.trigger("nope") == []
    finally:
        sched.shutdown()


async def test_rate_limited_result_pauses_the_endpoint() -> None:
    rec = Recorder(pause_for=120.0)
    sched = Scheduler(rec.probe, rec.on_run)
    sched.apply(many_endpoints(50, interval="2s", jitter="0s"))
    sched.start()
    try:
        sched.trigger("p0", "e3")
        await wait_for(lambda: any(e == "e3" for _, e, _ in rec.calls))
        await asyncio.sleep(0.05)
        job = next(j for j in sched.jobs() if j.endpoint == "e3")
        assert job.next_run_at is not None and job.next_run_at >= time.time() + 100
    finally:
        sched.shutdown()


async def test_a_run_still_going_makes_the_next_one_missed() -> None:
    hold = asyncio.Event()
    rec = Recorder(hold=hold)
    sched = Scheduler(rec.probe, rec.on_run)
    sched.apply(many_endpoints(50))
    sched.start()
    try:
        sched.trigger("p0", "e0")
        e0_calls = lambda: [c for c in rec.calls if c[1] == "e0"]  # noqa: E731
        await wait_for(lambda: len(e0_calls()) == 1)
        sched.trigger("p0", "e0")
        await wait_for(lambda: any(r.result == "missed" and r.endpoint == "e0" for r in rec.runs))
        hold.set()
        assert len(e0_calls()) == 1
    finally:
        sched.shutdown()


async def test_apply_keeps_unchanged_jobs_and_removes_gone_ones() -> None:
    rec = Recorder()
    sched = Scheduler(rec.probe, rec.on_run)
    sched.apply(many_endpoints(100))
    before = {(j.provider, j.endpoint): j.next_run_at for j in sched.jobs()}
    sched.apply(many_endpoints(50))
    after = {(j.provider, j.endpoint): j.next_run_at for j in sched.jobs()}
    assert set(after) == {k for k in before if k[0] == "p0"}
    assert all(after[k] == pytest.approx(before[k], abs=0.01) for k in after)
    sched.shutdown()


async def test_runs_follow_the_interval_and_fall_behind_without_bursts() -> None:
    rec = Recorder()
    sched = Scheduler(rec.probe, rec.on_run, rng=random.Random(1))
    config = parse_config(
        {"providers": [{"name": "p", "category": "news", "base_url": "https://example.test", "endpoints": [{"name": "e", "interval": "100ms", "timeout": "50ms", "jitter": "0s"}]}]},
        env={},
    )
    sched.apply(config)
    sched.start()
    try:
        sched.trigger("p", "e")
        await asyncio.sleep(0.55)
        times = [t for _, _, t in rec.calls]
        assert 5 <= len(times) <= 7
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(0.08 < g < 0.13 for g in gaps), gaps
        # Block the loop for 3.5 intervals: the runs in between are missed, not replayed.
        before = len(rec.calls)
        time.sleep(0.35)
        await asyncio.sleep(0.05)
        assert len(rec.calls) - before <= 1
        assert any(r.result == "missed" for r in rec.runs)
    finally:
        sched.shutdown()
