"""`demo`: the simulator and an exporter pointed at it, in one process, offline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import replace

import structlog

from .app import Exporter, build_app, wait_for_stop
from .config import Budget, Config, Provider, load_config, parse_duration
from .feeds.config import SHIPPED as SHIPPED_FEEDS
from .feeds.config import Backoff, FeedsConfig, load_feeds
from .feeds.process import ChildOptions
from .incidents.service import IncidentSettings
from .redact import Redactor
from .selection import Choice, select
from .simulator import Simulator, simulator_config
from .simulator.chains import run_chain_chaos
from .simulator.chaos import run_chaos
from .simulator.feeds import run_feed_chaos, simulator_feeds
from .web.api import ApiOptions
from .web.server import WebOptions, serve

log = structlog.get_logger()
DEMO_INTERVAL = "5s"  # `demo --interval`'s default (cli.py keeps its imports light, so it repeats it)
DEMO_BREAKER_RESET = 20.0  # seconds: short, so a newcomer sees half_open and recovery
# One provider's budget is cut to this share of what its schedule asks for, so that
# budget_exhausted shows up within seconds of every window instead of after hours.
TIGHT_BUDGET_SHARE = 0.25
TIGHT_BUDGET_WINDOW = 20.0
DEMO_FROZEN_PROBES = 4  # max_unchanged shrinks to this many intervals (issue 11)
# Feeds: the shipped feeds.yaml on the simulator's venues, judged on a demo's time scale.
DEMO_FEED_SILENCE = 5.0
DEMO_FEED_BACKOFF = Backoff(initial=0.5, max=5.0, stable_after=20.0)


def demo_feeds(sim_url: str) -> FeedsConfig:
    return simulator_feeds(load_feeds(SHIPPED_FEEDS), sim_url, max_silence=DEMO_FEED_SILENCE, backoff=DEMO_FEED_BACKOFF, frozen_after=20.0)


def demo_env(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The environment with a made-up key for every key env var that is not set:
    the simulator accepts any key it was not told to reject."""
    out = dict(env)
    for p in config.providers:
        for name in p.auth.env:
            out.setdefault(name, f"demo-{name.lower().replace('_', '-')}")
    return out


def _scaled_budget(p: Provider, speedup: float) -> Budget | None:
    """A budget grown with the schedule's speed-up, so the demo spends it as production would."""
    if p.budget is None:
        return None
    return replace(p.budget, requests=max(1, round(p.budget.requests * speedup)))


def _tight_budget(p: Provider) -> Budget:
    planned = sum(TIGHT_BUDGET_WINDOW / ep.interval for ep in p.endpoints)
    return Budget(requests=max(1, int(planned * TIGHT_BUDGET_SHARE)), per=TIGHT_BUDGET_WINDOW)


def quota_speedup(p: Provider, interval: float) -> float:
    """How many times faster the demo spends the provider's quota than production does:
    every endpoint at `interval` against the schedule's rate, itself capped by the budget."""
    if not p.endpoints:
        return 1.0
    production = sum(1.0 / ep.interval for ep in p.endpoints)
    if p.budget is not None:
        production = min(production, p.budget.requests / p.budget.per)
    demo = sum(1.0 / min(ep.interval, interval) for ep in p.endpoints)
    return max(1.0, demo / production)


def scale_quotas(config: Config, interval: float) -> Config:
    """Provider quotas with a configured size grown by the demo's speed-up, for the
    simulator (which counts against them) and the exporter (which reports them) alike:
    a quota production uses at 40 % reads about 40 % in the demo, not 100 % within
    minutes of a quiet start."""
    return config.with_providers(
        tuple(
            replace(
                p,
                quota_headers=tuple(
                    replace(q, limit_value=q.limit_value * quota_speedup(p, interval)) if q.limit_value is not None else q for q in p.quota_headers
                ),
            )
            for p in config.providers
        )
    )


def tight_budget_provider(config: Config) -> str | None:
    """The provider the demo puts on a tight budget: the first one with a budget."""
    return next((p.name for p in config.providers if p.budget is not None), None)


def demo_config(config: Config, simulator_url: str, interval: float) -> Config:
    """The config pointed at the simulator, with every endpoint on a short interval,
    budgets scaled to match, and one provider on a tight budget."""
    config = simulator_config(scale_quotas(config, interval), simulator_url)
    providers = []
    tight = tight_budget_provider(config)
    for p in config.providers:
        speedup = max(ep.interval / min(ep.interval, interval) for ep in p.endpoints) if p.endpoints else 1.0
        endpoints = tuple(
            replace(
                ep,
                interval=min(ep.interval, interval),
                timeout=min(ep.timeout, interval * 0.8),
                jitter=min(ep.jitter, interval * 0.2),
                slow_threshold=min(ep.slow_threshold, interval * 0.4),
                # A frozen price must end stale within the demo's first minutes.
                values=tuple(replace(v, max_unchanged=min(v.max_unchanged, DEMO_FROZEN_PROBES * interval)) if v.max_unchanged else v for v in ep.values),
            )
            for ep in p.endpoints
        )
        breaker = replace(p.circuit_breaker, reset_timeout=min(p.circuit_breaker.reset_timeout, DEMO_BREAKER_RESET))
        p = replace(p, endpoints=endpoints, circuit_breaker=breaker, budget=_scaled_budget(p, speedup))
        if p.name == tight:
            p = replace(p, budget=_tight_budget(p))
        providers.append(p)
    return config.with_providers(tuple(providers))


def banner(n_providers: int, base: str, sim_url: str, chaos: bool) -> str:
    faults = "rotating chaos on: every outcome within a minute" if chaos else "none; inject your own"
    return f"""
Crypto API Exporter demo: {n_providers} providers, offline, against the built-in simulator.

  metrics      {base}/metrics
  status page  {base}/status   badges: {base}/badge/binance/health.svg
  JSON API     {base}/api/status   {base}/api/providers   (reference: {base}/docs)
  live events  {base.replace("http", "ws", 1)}/ws/live
  feeds        {base}/api/feeds   {base.replace("http", "ws", 1)}/ws/market_data   (6 venues on the simulator)
  simulator    {sim_url}/control/faults   (faults: {faults})
  chain heads  {base}/api/chains   {sim_url}/control/chains
  incidents    {base}/api/incidents   (Alertmanager webhook: POST {base}/api/incidents/webhook)

Try:
  curl -s {base}/metrics | grep -E '^crypto_api_(up|probes_total)'
  curl -s -XPOST {sim_url}/control/faults -d '{{"provider": "binance", "status": 503}}'
  curl -s -XDELETE {sim_url}/control/faults
  curl -s -XPOST {sim_url}/control/feeds -d '{{"venue": "okx", "silence": true}}'
  curl -s -XPOST {base}/api/schedule/trigger -d '{{"provider": "binance"}}'

Ctrl-C stops it.
"""


async def run_demo(
    providers_file: str | None,
    listen: tuple[str | None, int],
    sim_listen: tuple[str | None, int],
    interval: str,
    chaos: bool,
    redactor: Redactor,
    choice: Choice | None = None,
    incidents: IncidentSettings | None = None,
    feeds_process: ChildOptions | None = None,  # the feeds in a child process (cli: unless --feeds.in-process)
) -> None:
    seconds = parse_duration(interval)
    env = demo_env(load_config(providers_file, {}), os.environ)
    sim = Simulator(scale_quotas(load_config(providers_file, env), seconds))
    bound_sim = await sim.start(sim_listen[0] or "", sim_listen[1])
    sim_url = f"http://{sim_listen[0] or '127.0.0.1'}:{bound_sim}"

    def loader() -> Config:
        # Every key is set (made up), so every selected provider runs unless --disable says not.
        return demo_config(select(load_config(providers_file, env), choice or Choice()), sim_url, seconds)

    exporter = Exporter(loader, redactor=redactor, feeds_loader=lambda: demo_feeds(sim_url), feeds_process=feeds_process)
    # The demo spends no real quota: reloads and actions are open (on loopback by default).
    # The demo's exporter runs the incident service too (POST /api/incidents/webhook).
    options = WebOptions(enable_lifecycle=True, api=ApiOptions(enable_actions=True, incidents=incidents or IncidentSettings()))
    runner, bound = await serve(build_app(exporter, options), listen[0] or "", listen[1])
    chaos_task = asyncio.create_task(run_chaos(sim, exporter.config)) if chaos else None
    feed_chaos = asyncio.create_task(run_feed_chaos(sim.feeds)) if chaos else None
    # Chain heads (issue 11): a node lagging, stuck, on another chain, syncing, and a rogue one far ahead.
    chain_task = asyncio.create_task(run_chain_chaos(sim, exporter.config)) if chaos else None
    base = f"http://{listen[0] or '127.0.0.1'}:{bound}"
    sys.stdout.write(banner(len(exporter.config.providers), base, sim_url, chaos))
    sys.stdout.flush()
    log.info("demo_ready", metrics=f"{base}/metrics", simulator=sim_url, chaos=chaos)
    try:
        await wait_for_stop()
    finally:
        for task in (chaos_task, feed_chaos, chain_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await runner.cleanup()
        await sim.stop()
