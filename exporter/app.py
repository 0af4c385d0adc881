"""The composition root: the only module that knows every piece.

config -> runtimes -> scheduler -> probe kind -> ProbeResult -> store (metrics read it),
log line, listeners (the WebSocket hub). The web layer gets this object as an
`ExporterControl` and the store; everything that acts (reload, trigger, key tests) runs
here, never in a route.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace

import aiohttp
import structlog
from aiohttp import web

from .chains import Chains, chain_members
from .config import Config, ConfigError, load_config
from .feeds.config import FeedsConfig
from .feeds.metrics import FeedCollector
from .feeds.process import ChildOptions, FeedProcess
from .feeds.runner import FeedManager
from .feeds.state import FeedState, FeedStore
from .metrics import Exposition, build_registry
from .model import JobInfo, KeyTest, Outcome, ProbeResult, ScheduleRun
from .probes import KINDS, ProbeContext, ProbeSpec
from .redact import Redactor, mask
from .runtime import Runtimes
from .scheduler import Scheduler
from .selection import Choice, select, why
from .shard import UNSHARDED, Shard
from .sharding import ShardInfo, restrict
from .state import State
from .web.api import API_KEY
from .web.control import Listener, NotRunning
from .web.server import WebOptions, build_web_app

log = structlog.get_logger()

GC_YOUNG_THRESHOLD = 50_000
ConfigLoader = Callable[[], Config]
FeedsLoader = Callable[[], FeedsConfig]


def file_loader(path: str | None, env: Mapping[str, str] | None = None, choice: Choice | None = None, shard: Shard = UNSHARDED) -> ConfigLoader:
    """The file (and what it extends) with its keys read now, then the selection: each
    reload reads both again, so a key that appeared (a NAME_FILE written, say) or an
    `enabled:` changed takes effect on reload."""
    return lambda: restrict(shard, select(load_config(path, env if env is not None else os.environ), choice or Choice()))


class Exporter:
    """Builds and owns every piece; implements `ExporterControl` for the web layer."""

    def __init__(
        self,
        loader: ConfigLoader,
        *,
        redactor: Redactor | None = None,
        process_metrics: bool = True,
        backoff_base: float = 0.5,
        feeds_loader: FeedsLoader | None = None,
        feeds_process: ChildOptions | None = None,
    ) -> None:
        self.loader = loader
        self.backoff_base = backoff_base
        self.redactor = redactor or Redactor()
        self.runtimes = Runtimes()
        self.state = State()
        self.registry = build_registry(process_metrics=process_metrics)
        self.registry.register(ShardInfo(lambda: self._config.shard))
        self.chains = Chains()  # the one owner of chain heads: chain_head probes, /metrics and /api/chains share it
        self.exposition = Exposition(self.state, self.registry, chains=self.chains)
        self.scheduler = Scheduler(self.run_probe, self.record_schedule)
        self._listeners: list[Listener] = []
        self._schedule_listeners: list[Callable[[ScheduleRun], None]] = []
        self._config = Config(())
        self._apply(loader())  # a bad file at start-up raises ConfigError
        # Feeds (exporter/feeds/, docs/feeds.md): their own file, store, runners and
        # collector; a feed's connect and disconnect reach the provider status here.
        # With `feeds_process` (the CLI's default for `run --feeds` and `demo`) the runners
        # live in a child process (feeds/process.py): at 5,000 msg/s in this event loop
        # they cost the probes' latency p99 2 to 8 ms (bench/README.md), and a thread
        # would share the GIL. `feed_store` is then the child's mirror, updated from its
        # snapshots, and everything below reads it as before. Without it (tests, library
        # use, `--feeds.in-process`) the runners share this loop and write the store.
        self.feeds_loader = feeds_loader
        self.feed_store = FeedStore()
        self.feed_store.listeners.append(self._on_feed_change)
        self.feeds: FeedManager | FeedProcess = (
            FeedProcess(self.feed_store, feeds_process) if feeds_process is not None and feeds_loader is not None else FeedManager(self.feed_store)
        )
        self.registry.register(FeedCollector(self.feed_store))
        if feeds_loader is not None:
            self.feeds.apply(feeds_loader())  # a bad feeds file at start-up raises ConfigError too
        self.state.record_reload(True, time.time())
        self._ctx: ProbeContext | None = None

    @property
    def config(self) -> Config:
        return self._config

    def _apply(self, config: Config) -> None:
        self.redactor.update(config.secrets())
        self.runtimes.apply(config)  # first: the store reads breakers and keys from it
        self.state.apply_config(config, self.runtimes)
        self.chains.apply(chain_members(config))
        previous = self._config
        self._config = config
        for warning in config.warnings:
            log.warning("config_warning", message=warning)
        _log_selection(previous, config)

    def reload(self) -> list[str]:
        """Reload the file; on errors keep the running config. Returns the errors."""
        try:
            config = self.loader()
            feeds = self.feeds_loader() if self.feeds_loader is not None else None
        except ConfigError as e:
            errors = e.errors
        except Exception as e:  # a loader bug must not answer 500 nor leave the old config half-replaced
            log.exception("config_reload_crashed")
            errors = [f"{self._config.source}: the file could not be loaded ({type(e).__name__}); the running config is kept"]
        else:
            errors = []
            if feeds is not None:
                self.feeds.apply(feeds)
        if errors:
            self.state.record_reload(False, time.time())
            for line in errors:
                log.error("config_reload_failed", error=line)
            return errors
        self._apply(config)
        self.scheduler.apply(config)
        self.state.record_reload(True, time.time())
        log.info(
            "config_reloaded",
            source=config.source,
            providers=len(config.providers),
            endpoints=sum(len(p.endpoints) for p in config.providers),
            disabled=len(config.disabled),
        )
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
            chains=self.chains,
        )
        if schedule:
            self.scheduler.apply(self._config)
            self.scheduler.start()
        await self.feeds.start()
        # Everything allocated so far (config, state, jobs) lives as long as the process:
        # keep it out of full collections, whose pauses would stall probes in flight.
        gc.collect()
        gc.freeze()
        # A young collection costs what is alive in flight, whatever the threshold: at the
        # default of 700 it ran ten times a second for ~2 ms each and set the latency p99
        # (bench/). Probes leave no cyclic garbage, so collecting rarely costs no memory.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)
        log.info(
            "exporter_started",
            providers=len(self._config.providers),
            endpoints=sum(len(p.endpoints) for p in self._config.providers),
            disabled=len(self._config.disabled),
            not_selected=len(self._config.not_selected),
            source=self._config.source,
        )

    async def stop(self) -> None:
        self.scheduler.shutdown()
        await self.feeds.stop()
        if self._ctx is not None:
            await self._ctx.session.close()
            if self._ctx.fresh_session is not None:
                await self._ctx.fresh_session.close()
            self._ctx = None

    # ------------------------------------------------------------ probing

    def _spec(self, provider: str, endpoint: str) -> ProbeSpec | None:
        try:
            p = self._config.provider(provider)
            return ProbeSpec(p, p.endpoint(endpoint), self.runtimes[p.name])
        except KeyError:
            return None  # removed by a reload while the job was queued

    async def run_probe(self, provider: str, endpoint: str) -> ProbeResult | None:
        """Probe one endpoint now and publish the result (the scheduler's job, and tests')."""
        if self._ctx is None:
            raise NotRunning("exporter not started")
        spec = self._spec(provider, endpoint)
        if spec is None:
            return None
        ctx = self._ctx
        started = ctx.wall()
        try:
            result = await KINDS[spec.endpoint.kind].probe(ctx, spec)
        except Exception as e:  # noqa: BLE001 - a kind's bug must still end in one outcome (DESIGN.md), not in the scheduler
            result = self._crashed(ctx, spec, e, started)
        self.publish(result)
        return result

    def _crashed(self, ctx: ProbeContext, spec: ProbeSpec, error: Exception, started: float) -> ProbeResult:
        """The result of a probe kind that raised: logged once with its traceback, redacted
        (exception text can carry a URL, and a URL a key), and published like any other.

        The outcome is `bad_payload`: a kind turns every transport failure (timeouts,
        refused connections, cut bodies) into its own outcome, so what is left to raise is
        an answer our checks could not digest. It says "not confirmed good" (`up` 0, an
        alert) without blaming the network, the quota or the key: no key is marked
        invalid, no pause is taken, and the breaker sees it as it sees any bad payload,
        which also ends a half-open trial that would otherwise stay running for ever."""
        log.error(
            "probe_crashed",
            provider=spec.provider.name,
            endpoint=spec.endpoint.name,
            kind=spec.endpoint.kind.value,
            error=type(error).__name__,
            traceback=self.redactor.redact("".join(traceback.format_exception(error))),
        )
        spec.runtime.breaker.record(Outcome.BAD_PAYLOAD, ctx.monotonic())
        return ProbeResult(
            provider=spec.provider.name,
            category=spec.provider.category.value,
            endpoint=spec.endpoint.name,
            outcome=Outcome.BAD_PAYLOAD,
            started_at=started,
            finished_at=ctx.wall(),
            detail=f"the probe failed inside the exporter ({type(error).__name__}); see the log event probe_crashed",
            circuit_state=spec.runtime.breaker.state,
        )

    def publish(self, result: ProbeResult) -> None:
        previous = self.state.last_outcome(result.provider, result.endpoint)
        self.state.record(result)
        _log_result(result, previous)
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("listener_failed", listener=getattr(listener, "__name__", repr(listener)))

    def _on_feed_change(self, feed: FeedState) -> None:
        """A provider with a feed down is degraded, never offline: its probes say whether
        it answers; a feed can fail for reasons of its own (docs/feeds.md)."""
        self.state.set_feed_trouble(self.feed_store.troubled_providers())

    def record_schedule(self, run: ScheduleRun) -> None:
        self.state.record_schedule(run)
        for listener in self._schedule_listeners:
            listener(run)

    def subscribe_schedule(self, listener: Callable[[ScheduleRun], None]) -> None:
        """Every scheduled run as it happens (bench/ measures start delays with it)."""
        self._schedule_listeners.append(listener)

    # ------------------------------------------------------------ ExporterControl

    def trigger(self, provider: str | None = None, endpoint: str | None = None) -> list[str]:
        return self.scheduler.trigger(provider, endpoint)

    def jobs(self) -> list[JobInfo]:
        return self.scheduler.jobs()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def test_keys(self, provider: str, endpoint: str) -> list[KeyTest]:
        """One attempt per configured key (no retry, breaker or rotation); what it learns
        about each key goes to the provider's key ring, so `crypto_api_key_valid` shows it."""
        if self._ctx is None:
            raise NotRunning("exporter not started")
        spec = self._spec(provider, endpoint)
        if spec is None:
            raise KeyError(f"{provider}/{endpoint}")
        probe_key = KINDS[spec.endpoint.kind].probe_key
        values = {k.env: k for k in spec.provider.auth.keys}
        tests: list[KeyTest] = []
        for env in spec.provider.auth.env:
            key = values.get(env)
            if key is None or probe_key is None:
                tests.append(KeyTest(env, key is not None, mask(key.value) if key else None, None))
                continue
            result = await probe_key(self._ctx, spec, key)
            for check in result.key_checks:
                spec.runtime.keys.record(check.env, check.valid, self._ctx.monotonic())
            tests.append(KeyTest(env, True, mask(key.value), result))
        return tests


def build_app(exporter: Exporter, options: WebOptions | None = None, *, handle_sighup: bool = True, schedule: bool = True) -> web.Application:
    """The web app with the exporter's start and stop around it."""
    options = options or WebOptions()
    options = replace(options, api=replace(options.api, feeds=exporter.feed_store))  # /api/feeds, /ws/market_data
    app = build_web_app(exporter, exporter.state, exporter.exposition, exporter.registry, options)
    # The API's tokens are secrets like the providers' keys: no log line may carry one
    # (a client's header in an error, a query string). Their own group: a reload of the
    # providers file replaces the keys, not these.
    exporter.redactor.update(app[API_KEY].settings.tokens, group="api_tokens")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await exporter.start(schedule=schedule)
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(signal.SIGHUP, exporter.reload)
        yield
        if handle_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        await exporter.stop()

    app.cleanup_ctx.insert(0, lifecycle)  # the exporter starts before the API's tasks, stops after
    return app


async def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _log_selection(previous: Config, config: Config) -> None:
    """One line per provider that is disabled now and was not before (at start-up: every
    disabled one), and one per provider a reload brought back: said once, not per probe."""
    was_off = {d.name for d in previous.disabled}
    for d in config.disabled:
        if d.name not in was_off:
            fields: dict[str, object] = {"provider": d.name, "category": d.provider.category.value, "reason": d.reason.value}
            if d.provider.auth.env:
                fields["env"] = list(d.provider.auth.env)  # names, never values
            log.info("provider_disabled", **fields, detail=why(d))
    for p in config.providers:
        if p.name in was_off:
            log.info("provider_enabled", provider=p.name, category=p.category.value, keys=len(p.auth.keys))


def _log_result(r: ProbeResult, previous: Outcome | None) -> None:
    """Successes at debug (one per probe would drown the log), a recovery at info, every
    failure at warning. A skip (open breaker, spent budget) is not news the second time:
    the first says why, the next ones at debug until the outcome changes."""
    fields: dict[str, object] = {
        "provider": r.provider,
        "endpoint": r.endpoint,
        "outcome": r.outcome.value,
        "status_code": r.status_code,
        "latency_ms": round(r.duration * 1000, 1) if r.duration is not None else None,
        "attempts": r.attempts,
    }
    if previous is not None and previous is not r.outcome:
        fields["previous"] = previous.value
    if r.retries:
        fields["retries"] = [x.value for x in r.retries]
    if r.key_env:
        fields["key"] = r.key_env  # the env var's name, never its value
    if r.detail:
        fields["detail"] = r.detail
    if r.outcome.skipped and previous is r.outcome:
        log.debug("probe", **fields)
    elif not r.ok:
        log.warning("probe", **fields)
    elif previous is not None and previous is not Outcome.SUCCESS:
        log.info("probe", **fields)
    else:
        log.debug("probe", **fields)
