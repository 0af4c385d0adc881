"""Benchmark /metrics rendering, plain and gzip, against prometheus-client's own path
(run by hand: `make bench-render`, or `python bench/render.py --endpoints 1000,10000`).

One process, no network: a store filled as after a day of probing (every endpoint with
outcomes, codes, a latency histogram, z-score, data age and a value), rendered by

- ours, plain: `Exposition.stream`, the /metrics handler's path;
- ours, gzip: `stream_gzip` (level 1, compressed in a worker thread), the path taken
  when the scraper sends `Accept-Encoding: gzip`, as Prometheus does;
- the peer: prometheus-client's `generate_latest` over an equivalent registry of its own
  metric objects (same families, labels and values), then `gzip.compress` as its
  exposition helper does for a gzip-accepting scraper.

Per figure: wall time, CPU time of the whole process (threads included), the longest
the event loop was held without a yield (what a probe in flight would wait), and bytes.
Median of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from exporter.config import Config, parse_config
from exporter.families import DURATION_BUCKETS
from exporter.metrics import Exposition, build_registry
from exporter.model import Outcome, ProbeResult, QuotaObservation
from exporter.runtime import Runtimes
from exporter.state import State
from exporter.web.server import stream_gzip

PER_PROVIDER = 100
NOW = 1_790_000_000.0


def config(endpoints: int) -> Config:
    providers = [
        {
            "name": f"p{p}",
            "category": "market_data",
            "base_url": "https://api.example.test",
            "rate_limit": {"budget": {"requests": 100_000, "per": "1d"}},
            "endpoints": [
                {"name": f"e{i}", "freshness": {"path": "ts", "max_age": "5m"}, "values": [{"name": "btc_usd", "path": "price"}]}
                for i in range(p * PER_PROVIDER, min((p + 1) * PER_PROVIDER, endpoints))
            ],
        }
        for p in range((endpoints + PER_PROVIDER - 1) // PER_PROVIDER)
    ]
    return parse_config({"providers": providers}, env={})


def filled_store(cfg: Config) -> State:
    runtimes = Runtimes()
    runtimes.apply(cfg)
    state = State()
    state.apply_config(cfg, runtimes)
    for p in cfg.providers:
        for n, ep in enumerate(p.endpoints):
            for k in range(12):  # a z-score needs 10 latencies
                outcome = Outcome.SERVER_ERROR if (n + k) % 11 == 0 else Outcome.SUCCESS
                state.record(
                    ProbeResult(
                        p.name, p.category.value, ep.name, outcome, NOW - 1, NOW,
                        duration=0.05 + 0.001 * k, status_code=200 if outcome is Outcome.SUCCESS else 503, attempts=1,
                        http_codes=(200,) if outcome is Outcome.SUCCESS else (503,),
                        quotas=(QuotaObservation("minute", 1200, 1100 - k, NOW + 30),),
                        data_timestamp=NOW - 5, values=(("btc_usd", 97_000.0 + k),),
                    )
                )  # fmt: skip
    return state


def peer_registry(state: State) -> CollectorRegistry:
    """The same families as prometheus-client objects, for its generic exposition."""
    disable_created_metrics()  # no `_created` series: the same lines as ours
    reg = CollectorRegistry(auto_describe=False)
    up = Gauge("crypto_api_up", "h", ["provider", "category", "endpoint"], registry=reg)
    dur = Histogram("crypto_api_probe_duration_seconds", "h", ["provider", "category", "endpoint"], buckets=DURATION_BUCKETS, registry=reg)
    probes = Counter("crypto_api_probes", "h", ["provider", "category", "endpoint", "outcome"], registry=reg)
    codes = Counter("crypto_api_http_responses", "h", ["provider", "endpoint", "code"], registry=reg)
    gauges = [Gauge(f"crypto_api_{n}", "h", ["provider", "endpoint"], registry=reg) for n in (
        "last_probe_timestamp_seconds", "last_success_timestamp_seconds", "data_age_seconds", "data_max_age_seconds", "latency_anomaly_zscore")]  # fmt: skip
    value = Gauge("crypto_api_value", "h", ["provider", "endpoint", "name"], registry=reg)
    for ep in state.endpoints():
        labels = (ep.provider, ep.category, ep.name)
        up.labels(*labels).set(1)
        for _ in range(ep.duration.count):
            dur.labels(*labels).observe(0.055)
        for o in Outcome:
            probes.labels(*labels, o.value).inc(ep.outcomes[o])
        for code, count in ep.codes.items():
            codes.labels(ep.provider, ep.name, str(code)).inc(count)
        for g in gauges:
            g.labels(ep.provider, ep.name).set(NOW)
        value.labels(ep.provider, ep.name, "btc_usd").set(97_000.0)
    return reg


@dataclass
class Figure:
    wall_ms: float
    cpu_ms: float
    max_hold_ms: float
    size: int


async def measure(render: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]) -> Figure:
    """Run `render` into a sink while a ticker notes the longest gap between loop turns."""
    size = 0
    gaps: list[float] = []
    done = False

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    wall, cpu = time.perf_counter(), time.process_time()
    await render(sink)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = True
    await tick
    return Figure(wall * 1000, cpu * 1000, max(gaps, default=0.0) * 1000, size)


def median(figs: list[Figure]) -> Figure:
    return Figure(*(statistics.median(getattr(f, a) for f in figs) for a in ("wall_ms", "cpu_ms", "max_hold_ms", "size")))  # type: ignore[arg-type]


async def run(endpoints: int, repeat: int) -> list[tuple[str, Figure]]:
    state = filled_store(config(endpoints))
    exposition = Exposition(state, build_registry(process_metrics=False), clock=lambda: NOW)
    peer = peer_registry(state)

    async def ours(write: Callable[[bytes], Awaitable[None]]) -> None:
        await exposition.stream(write)

    async def ours_gzip(write: Callable[[bytes], Awaitable[None]]) -> None:
        await stream_gzip(exposition, write)

    async def peer_plain(write: Callable[[bytes], Awaitable[None]]) -> None:
        await write(generate_latest(peer))

    async def peer_gzip(write: Callable[[bytes], Awaitable[None]]) -> None:
        await write(gzip.compress(generate_latest(peer)))

    cases = [("ours, plain", ours), ("ours, gzip", ours_gzip), ("prometheus-client, plain", peer_plain), ("prometheus-client, gzip", peer_gzip)]
    out = []
    for label, render in cases:
        await measure(render)  # warm caches (label strings, the thread pool)
        out.append((label, median([await measure(render) for _ in range(repeat)])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", default="1000,10000", help="comma-separated store sizes (default 1000,10000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is reported (default 5)")
    args = parser.parse_args()
    print("| endpoints | renderer | wall ms | CPU ms | loop held ms | size | CPU vs ours plain |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.endpoints.split(",")):
        rows = asyncio.run(run(n, args.repeat))
        base = rows[0][1].cpu_ms
        for label, f in rows:
            size = f"{f.size / 2**20:.2f} MiB" if f.size >= 2**20 else f"{f.size / 2**10:.0f} KiB"
            print(f"| {n:,} | {label} | {f.wall_ms:.0f} | {f.cpu_ms:.0f} | {f.max_hold_ms:.1f} | {size} | {f.cpu_ms / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
