"""The composition root: the only module that knows every piece.

config -> scheduler -> prober -> ProbeResult -> state (metrics read it), log line, listeners.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Mapping

import aiohttp
import structlog

from .config import Config, ConfigError, Provider, load_config
from .metrics import Exposition, build_registry
from .model import Outcome, ProbeResult, ScheduleRun
from .prober import ProbeContext, ProviderGuards, probe
from .redact import Redactor
from .scheduler import Scheduler
from .state import State

log = structlog.get_logger()

GC_YOUNG_THRESHOLD = 50_000
Listener = Callable[[ProbeResult], None]
ScheduleListener = Callable[[ScheduleRun], None]
ConfigLoader = Callable[[], Config]
_QUIET = {Outcome.SUCCESS}


def file_loader(path: str | None, env: Mapping[str, str] | None = None) -> ConfigLoader:
    return lambda: load_config(path, env if env is not None else os.environ)


def _guard_key(p: Provider) -> tuple[object, ...]:
    """What, when changed by a reload, resets a provider's breaker, keys and budget."""
    return (p.auth, tuple(k.value for k in p.auth.keys), p.budget, p.circuit_breaker)


class Exporter:
    def __init__(
        self, loader: ConfigLoader, *, redactor: Redactor | None = None, process_metrics: bool = True, backoff_base: float = 0.5
    ) -> None:
        self.loader = loader
        self.backoff_base = backoff_base
        self.redactor = redactor or Redactor()
        self.state = State()
        self.registry = build_registry(process_metrics=process_metrics)
        self.exposition = Exposition(self.state, self.registry)
        self.scheduler = Scheduler(self.run_probe, self.record_schedule)
        self.guards: dict[str, ProviderGuards] = {}
        self.listeners: list[Listener] = []
        self.schedule_listeners: list[ScheduleListener] = []
        self.config = Config(())
        self.config = self._apply(loader())  # a bad file at start-up raises ConfigError
        self.state.record_reload(True, time.time())
        self._ctx: ProbeContext | None = None

    def _apply(self, config: Config) -> Config:
        self.redactor.update(config.secrets())
        old = {p.name: p for p in self.config.providers}
        guards: dict[str, ProviderGuards] = {}
        for p in config.providers:
            prev = old.get(p.name)
            keep = prev is not None and p.name in self.guards and _guard_key(prev) == _guard_key(p)
            guards[p.name] = self.guards[p.name] if keep else ProviderGuards.for_provider(p)
        self.guards = guards
        self.state.apply_config(config)
        for warning in config.warnings:
            log.warning("config_warning", message=warning)
        return config

    def reload(self) -> list[str]:
        """Reload the file; on errors keep the running config. Returns the errors."""
        try:
            config = self.loader()
        except ConfigError as e:
            self.state.record_reload(False, time.time())
            for line in e.errors:
                log.error("config_reload_failed", error=line)
            return e.errors
        self.config = self._apply(config)
        self.scheduler.apply(config)
        self.state.record_reload(True, time.time())
        log.info("config_reloaded", source=config.source, providers=len(config.providers), endpoints=sum(len(p.endpoints) for p in config.providers))
        return []

    async def start(self, schedule: bool = True) -> None:
        """Open the HTTP sessions and, unless told not to (tests drive probes by hand), schedule."""
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        fresh = aiohttp.TCPConnector(limit=0, force_close=True)
        self._ctx = ProbeContext(
            # No cookie jar: provider cookies (Cloudflare's among them) would only cost work
            # on every request and could change what later probes measure.
            session=aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()),
            fresh_session=aiohttp.ClientSession(connector=fresh, cookie_jar=aiohttp.DummyCookieJar()),
            redactor=self.redactor,
            backoff_base=self.backoff_base,
        )
        if schedule:
            self.scheduler.apply(self.config)
            self.scheduler.start()
        # Everything allocated so far (config, state, jobs) lives as long as the process:
        # keep it out of full collections, whose pauses would stall probes in flight.
        gc.collect()
        gc.freeze()
        # A young collection costs what is alive in flight, whatever the threshold: at the
        # default of 700 it ran ten times a second for ~2 ms each and set the latency p99
        # (bench/). Probes leave no cyclic garbage, so collecting rarely costs no memory.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)
        log.info("exporter_started", providers=len(self.config.providers), endpoints=sum(len(p.endpoints) for p in self.config.providers), source=self.config.source)

    async def stop(self) -> None:
        self.scheduler.shutdown()
        if self._ctx is not None:
            await self._ctx.session.close()
            if self._ctx.fresh_session is not None:
                await self._ctx.fresh_session.close()
            self._ctx = None

    async def run_probe(self, provider: str, endpoint: str) -> ProbeResult | None:
        """Probe one endpoint now and publish the result (the scheduler's job, and tests')."""
        if self._ctx is None:
            raise RuntimeError("exporter not started")
        try:
            p = self.config.provider(provider)
            ep = p.endpoint(endpoint)
        except KeyError:
            return None  # removed by a reload while the job was queued
        result = await probe(self._ctx, p, ep, self.guards[p.name])
        self.publish(result)
        return result

    def publish(self, result: ProbeResult) -> None:
        self.state.record(result)
        _log_result(result)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop probing
                log.exception("listener_failed", listener=getattr(listener, "__name__", repr(listener)))

    def record_schedule(self, run: ScheduleRun) -> None:
        self.state.record_schedule(run)
        for listener in self.schedule_listeners:
            listener(run)

    @property
    def probe_context(self) -> ProbeContext | None:
        """The running exporter's HTTP sessions (None before start), for on-demand checks."""
        return self._ctx


def _log_result(r: ProbeResult) -> None:
    fields = {
        "provider": r.provider,
        "endpoint": r.endpoint,
        "outcome": r.outcome.value,
        "status_code": r.status_code,
        "latency_ms": round(r.duration * 1000, 1) if r.duration is not None else None,
        "attempts": r.attempts,
    }
    if r.retries:
        fields["retries"] = [x.value for x in r.retries]
    if r.key_env:
        fields["key"] = r.key_env  # the env var's name, never its value
    if r.detail:
        fields["detail"] = r.detail
    if r.outcome in _QUIET:
        log.info("probe", **fields)
    else:
        log.warning("probe", **fields)
