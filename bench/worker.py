"""One benchmark run of the real exporter: N endpoints on a target, probed on schedule.

Started by bench/run.py under `taskset` so the exporter has one core to itself. It runs
the same `Exporter` and aiohttp server as `crypto-api-exporter run` (classification,
state, metrics, logs all on), records every reported latency and schedule delay through
the exporter's listeners, and writes one JSON object of raw figures to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import time

# Run from a checkout without installing: bench/ sits beside exporter/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from exporter.app import (
    Exporter,
    build_app,
)
from exporter.cli import run_async
from exporter.config import Config, parse_config
from exporter.logs import configure_logging
from exporter.model import ProbeResult, ScheduleRun
from exporter.web.server import serve

PER_PROVIDER = 100


def bench_config(endpoints: int, rate: float, target: str, fresh: bool, timeout: float) -> Config:
    """`endpoints` endpoints whose intervals add up to `rate` probes per second."""
    interval = endpoints / rate
    providers = []
    for p in range((endpoints + PER_PROVIDER - 1) // PER_PROVIDER):
        first = p * PER_PROVIDER
        eps = [
            {
                "name": f"e{i}",
                "path": f"/delay/{i}",
                "interval": f"{interval}s",
                "timeout": f"{min(timeout, interval * 0.9)}s",
                "jitter": "0s",
                "fresh_connection": fresh,
                "assertions": ["ok"],
            }
            for i in range(first, min(first + PER_PROVIDER, endpoints))
        ]
        providers.append({"name": f"p{p}", "category": "market_data", "base_url": target, "endpoints": eps})
    return parse_config({"providers": providers}, env={})


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def main(args: argparse.Namespace) -> dict[str, object]:
    config = bench_config(args.endpoints, args.rate, args.target, args.fresh, args.timeout)
    exporter = Exporter(lambda: config)
    durations: list[float] = []
    delays: list[float] = []
    outcomes: dict[str, int] = {}
    measuring = False

    def on_result(r: ProbeResult) -> None:
        if measuring:
            outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
            if r.duration is not None and r.ok:
                durations.append(r.duration)

    def on_run(run: ScheduleRun) -> None:
        if measuring and run.delay is not None:
            delays.append(run.delay)

    exporter.subscribe(on_result)
    exporter.subscribe_schedule(on_run)
    runner, port = await serve(build_app(exporter, handle_sighup=False), "127.0.0.1", args.port)
    sys.stderr.write(f"READY {port}\n")
    sys.stderr.flush()
    await asyncio.sleep(args.warmup)
    measuring = True
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(args.duration)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - t0
    measuring = False
    rss = rss_bytes()
    await runner.cleanup()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "probes": sum(outcomes.values()),
        "outcomes": outcomes,
        "elapsed": elapsed,
        "cpu_seconds": cpu,
        "durations": durations,
        "delays": delays,
        "rss_bytes": rss,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="a new connection per probe, as blackbox_exporter")
    parser.add_argument("--out", required=True, help="file to write the JSON result to")
    args = parser.parse_args()
    # Logs stay on, as in production: JSON lines to stderr, which run.py discards.
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), "json")
    logging.getLogger().setLevel(logging.WARNING)
    result = run_async(main(args))
    with open(args.out, "w") as f:
        json.dump(result, f)
