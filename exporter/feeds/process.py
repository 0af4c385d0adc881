"""Feeds in a process of their own: the parent's side (worker.py is the child's).

Why a process: at 5,000 feed messages/s in the probes' event loop, the probes' latency
error p99 grew by ~2 ms on the quietest runs and ~8 ms in the square-wave runs
(bench/README.md, "Feeds"), against a goal of 0.5 ms. A thread would share the GIL and
the same slices of the CPU; another process has its own interpreter and event loop.

The child (`python -m exporter.feeds.worker`, an asyncio subprocess: a plain process
with a name in `ps`, an exit code, pipes the event loop reads without blocking, and no
re-import of the parent's __main__ as multiprocessing's spawn does) runs the FeedManager
with its own FeedStore. This side keeps the exporter's FeedStore as a mirror, written
only here from the child's snapshots (wire.py), read unchanged by /metrics, /api/feeds,
/ws/market_data and the provider status listeners.

- Snapshots: at most every wire.PERIOD (0.1 s) and at once on a connect or
  disconnect, the full state of the feeds that changed. Silence is judged in the child,
  where the messages are: the mirror learns of it at most one snapshot later.
- Reload: `apply` updates the mirror's feeds (removed feeds vanish at once) and sends
  the config, tagged with a generation; snapshots of an older generation are ignored so
  a feed restarted by the reload never gets its previous counters back.
- The child dying (or silent for UNRESPONSIVE seconds: it sends an empty snapshot every
  HEARTBEAT when nothing changed): logged with its exit code, every feed marked
  disconnected (reason `error`; so `crypto_api_feed_connected` drops and FeedSilent can
  fire, never stale data shown as live), restarted with backoff. Counters carry on from
  what the mirror had (wire.Base): a restart is not a counter reset.
- Bounded both ways: the child skips snapshots while the pipe is full (worker.py); this
  side writes one config per reload and kills a child that has not read MAX_FRAME of
  them (it restarts with the latest config).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import site
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from .config import FeedsConfig
from .state import FeedState, FeedStore, Reason
from .wire import HEADER, MAX_FRAME, PERIOD, Base, Configure, FrameError, Snapshot, apply, decode, encode, frame_length

log = structlog.get_logger()

UNRESPONSIVE = 10.0  # seconds without a frame from the child before it is killed (it sends one a second)
_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # the directory holding the `exporter` package
_SITE = {str(Path(p).resolve()) for p in (*site.getsitepackages(), site.getusersitepackages())}


@dataclass(frozen=True)
class ChildOptions:
    log_level: str = "info"
    log_format: str = "json"
    period: float = PERIOD
    stop_timeout: float = 5.0  # graceful stop (stdin closed), then SIGKILL
    restart_initial: float = 0.5
    restart_max: float = 30.0
    stable_after: float = 60.0  # a child up this long resets the restart backoff


class FeedProcess:
    """Starts, feeds, watches and restarts the feeds process; the same `apply`, `start`
    and `stop` as FeedManager, so the composition root holds either."""

    def __init__(self, store: FeedStore, options: ChildOptions | None = None) -> None:
        self.store = store
        self.options = options or ChildOptions()
        self.config = FeedsConfig()
        self.generation = 0
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0  # children started (tests and logs)
        self.snapshots = 0  # snapshots applied
        self._bases: dict[tuple[str, str], tuple[FeedState, Base]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def apply(self, config: FeedsConfig) -> None:
        self.config = config
        self.generation += 1
        self.store.apply(config)
        self._send()

    def _send(self) -> None:
        proc = self.process
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return  # the next child gets the config when it starts
        if proc.stdin.transport.get_write_buffer_size() > MAX_FRAME:
            log.error("feeds_process_not_reading", pid=proc.pid)
            proc.kill()  # it restarts with the latest config
            return
        proc.stdin.write(encode(Configure(self.generation, self.config)))

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="feeds-process")

    async def stop(self) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()  # the child's signal to stop: its runners close their sockets
        task, self._task = self._task, None
        if task is None:
            return
        if proc is None:  # between two children (the restart backoff): nothing to wait for
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.options.stop_timeout)
        if not done:
            if self.process is not None and self.process.returncode is None:
                log.warning("feeds_process_killed", pid=self.process.pid, after=self.options.stop_timeout)
                self.process.kill()
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("feeds_process_supervisor_failed", error=repr(task.exception()))

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            started = loop.time()
            code = await self._child()
            if self._stopping:
                return
            failures = 0 if loop.time() - started >= self.options.stable_after else failures + 1
            delay = min(self.options.restart_max, self.options.restart_initial * 2.0 ** min(failures - 1, 16))
            self._gone(code, delay)
            await asyncio.sleep(delay)

    async def _child(self) -> int | None:
        """One child, from start to exit; returns its exit code (None: it never started)."""
        env = dict(os.environ)
        if _ROOT not in _SITE:
            # A source checkout: the child must import this very tree (an install of the
            # package elsewhere on the path would otherwise win). Not for an installed
            # package: site-packages ahead of the standard library could shadow it.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        o = self.options
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "exporter.feeds.worker",
                f"--log.level={o.log_level}",
                f"--log.format={o.log_format}",
                f"--period={o.period}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as e:
            log.error("feeds_process_start_failed", error=str(e))
            return None
        self.process = proc
        self.started += 1
        log.info("feeds_process_started", pid=proc.pid, feeds=len(self.config.feeds))
        self._send()
        assert proc.stdout is not None
        try:
            while True:
                header = await asyncio.wait_for(proc.stdout.readexactly(HEADER.size), UNRESPONSIVE)
                record = decode(await asyncio.wait_for(proc.stdout.readexactly(frame_length(header)), UNRESPONSIVE))
                if isinstance(record, Snapshot):
                    self._snapshot(record)
        except asyncio.IncompleteReadError:
            pass  # it exited (or closed its stdout: it is about to)
        except TimeoutError:
            if not self._stopping:
                log.error("feeds_process_unresponsive", pid=proc.pid, seconds=UNRESPONSIVE)
            proc.kill()
        except FrameError as e:
            log.error("feeds_process_bad_frame", pid=proc.pid, error=str(e))
            proc.kill()
        finally:
            if self._stopping and proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), self.options.stop_timeout)
                if proc.returncode is None:
                    proc.kill()
            code = await proc.wait()
            self.process = None
        return code

    def _snapshot(self, snap: Snapshot) -> None:
        if snap.generation != self.generation:
            return  # sent before the child read the latest config
        self.snapshots += 1
        for s in snap.feeds:
            state = self.store.feeds.get(s.key)
            if state is None:
                continue  # removed by a reload the child has not applied yet
            held = self._bases.get(s.key)
            if apply(state, s, held[1] if held is not None and held[0] is state else None):
                self.store.changed(state)

    def _gone(self, code: int | None, delay: float) -> None:
        """The child is gone: say so, mark its feeds down, keep their counts."""
        fields: dict[str, object] = {"exit_code": code, "restart_in": round(delay, 3)}
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                fields["signal"] = signal.Signals(-code).name
        log.error("feeds_process_exited", **fields)
        for state in self.store:
            if state.connected:
                state.on_disconnected(Reason.ERROR)
                self.store.changed(state)
        self._bases = {state.key: (state, Base.of(state)) for state in self.store}
