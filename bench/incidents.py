"""Benchmark the incident store (run by hand: `.venv/bin/python bench/incidents.py`).

Alertmanager notifications (50-alert storms, and single alerts) ingested into a WAL
SQLite file, two ways, interleaved:

- `thread`: the service's way (IncidentStore: every call on one dedicated thread);
- `on loop`: the peer, the same IncidentDb calls made directly on the event loop.

Figures: notifications/s, ingest time p50/p99, and the event loop's lateness meanwhile
(a 1 ms ticker: how late it wakes, p99 and max), which is what a probe in flight in the
same process would add to its reported latency. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.incidents.payload import Notification, parse_notification
from exporter.incidents.store import IncidentDb, IncidentStore
from tests.incident_payloads import notification, provider_alert, storm


def workload(n: int) -> list[Notification]:
    """n groups: each opens with a 50-alert storm, is repeated, gains an alert, resolves."""
    out = []
    for g in range(n):
        body = storm(50)
        body["groupKey"] += f"-{g}"
        out.append(parse_notification(body))
        out.append(parse_notification(body))
        extra = notification([provider_alert("ProviderDown", f"late_{g}", category="market_data")], group={"category": "market_data"})
        extra["groupKey"] = body["groupKey"]
        out.append(parse_notification(extra))
        resolved = {**body, "status": "resolved", "alerts": [{**a, "status": "resolved"} for a in body["alerts"]]}
        out.append(parse_notification(resolved))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(ingest: Callable[[Notification, float], Awaitable[object]], work: list[Notification]) -> dict[str, float]:
    lateness: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            planned = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            lateness.append(max(0.0, time.perf_counter() - planned))

    tick = asyncio.create_task(ticker())
    took: list[float] = []
    started = time.perf_counter()
    for i, n in enumerate(work):
        t = time.perf_counter()
        await ingest(n, 1.7e9 + i)
        took.append(time.perf_counter() - t)
        await asyncio.sleep(0)  # between requests, as a server yields: the ticker gets its turn
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    return {
        "per_s": len(work) / elapsed,
        "p50_ms": statistics.median(took) * 1000,
        "p99_ms": pct(took, 0.99) * 1000,
        "lag_p99_ms": pct(lateness, 0.99) * 1000,
        "lag_max_ms": max(lateness) * 1000,
    }


async def run_thread(path: str, work: list[Notification]) -> dict[str, float]:
    store = IncidentStore(path)
    await store.open()
    try:
        return await measure(lambda n, now: store.call(lambda db: db.ingest(n, now)), work)
    finally:
        await store.close()


async def run_on_loop(path: str, work: list[Notification]) -> dict[str, float]:
    db = IncidentDb(path)

    async def ingest(n: Notification, now: float) -> object:
        return db.ingest(n, now)

    try:
        return await measure(ingest, work)
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=200, help="alert groups per run (4 notifications each)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = workload(args.groups)
    results: dict[str, list[dict[str, float]]] = {"thread": [], "on loop": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for mode, fn in (("thread", run_thread), ("on loop", run_on_loop)):
                results[mode].append(asyncio.run(fn(f"{tmp}/{mode.replace(' ', '_')}-{r}.db", work)))
    print(f"{len(work)} notifications ({args.groups} groups: a 50-alert storm, a repeat, a late joiner, the resolve), median of {args.repeat} runs")
    print(f"{'mode':<10}{'notif/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'loop lag p99 ms':>17}{'loop lag max ms':>17}")
    for mode, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{mode:<10}{m['per_s']:>10.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}{m['lag_p99_ms']:>17.2f}{m['lag_max_ms']:>17.2f}")


if __name__ == "__main__":
    main()
