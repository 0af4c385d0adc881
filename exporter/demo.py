"""`demo`: the simulator and an exporter pointed at it, in one process, offline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import replace

import structlog

from .app import Exporter
from .config import Config, load_config, parse_duration
from .redact import Redactor
from .server import build_app, serve, wait_for_stop
from .simulator import Simulator, simulator_config
from .simulator.chaos import run_chaos

log = structlog.get_logger()
DEMO_BREAKER_RESET = 20.0  # seconds: short, so a newcomer sees half_open and recovery


def demo_env(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The environment with a made-up key for every key env var that is not set:
    the simulator accepts any key it was not told to reject."""
    out = dict(env)
    for p in config.providers:
        for name in p.auth.env:
            out.setdefault(name, f"demo-{name.lower().replace('_', '-')}")
    return out


def demo_config(config: Config, simulator_url: str, interval: float) -> Config:
    """The config pointed at the simulator, with every endpoint on a short interval."""
    config = simulator_config(config, simulator_url)
    providers = []
    for p in config.providers:
        endpoints = tuple(
            replace(
                ep,
                interval=min(ep.interval, interval),
                timeout=min(ep.timeout, interval * 0.8),
                jitter=min(ep.jitter, interval * 0.2),
                slow_threshold=min(ep.slow_threshold, interval * 0.4),
            )
            for ep in p.endpoints
        )
        breaker = replace(p.circuit_breaker, reset_timeout=min(p.circuit_breaker.reset_timeout, DEMO_BREAKER_RESET))
        providers.append(replace(p, endpoints=endpoints, circuit_breaker=breaker))
    return config.with_providers(tuple(providers))


async def run_demo(
    providers_file: str | None,
    host: str,
    port: int,
    sim_port: int,
    interval: str,
    chaos: bool,
    redactor: Redactor,
) -> None:
    seconds = parse_duration(interval)
    env = demo_env(load_config(providers_file, {}), os.environ)
    sim = Simulator(load_config(providers_file, env))
    bound_sim = await sim.start(host, sim_port)
    sim_url = f"http://{host}:{bound_sim}"

    def loader() -> Config:
        return demo_config(load_config(providers_file, env), sim_url, seconds)

    exporter = Exporter(loader, redactor=redactor)
    runner, bound = await serve(build_app(exporter), host, port)
    chaos_task = asyncio.create_task(run_chaos(sim, exporter.config)) if chaos else None
    base = f"http://{host}:{bound}"
    sys.stdout.write(
        f"""
Crypto API Exporter demo: {len(exporter.config.providers)} providers, offline, against the built-in simulator.

  metrics      {base}/metrics
  health       {base}/healthz
  simulator    {sim_url}/control/faults   (faults: {'rotating chaos on' if chaos else 'none; inject your own'})

Try:
  curl -s {base}/metrics | grep -E '^crypto_api_(up|probes_total)'
  curl -s -XPOST {sim_url}/control/faults -d '{{"provider": "binance", "status": 503}}'
  curl -s -XDELETE {sim_url}/control/faults

Ctrl-C stops it.
"""
    )
    sys.stdout.flush()
    log.info("demo_ready", metrics=f"{base}/metrics", simulator=sim_url, chaos=chaos)
    try:
        await wait_for_stop()
    finally:
        if chaos_task is not None:
            chaos_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chaos_task
        await runner.cleanup()
        await sim.stop()
