"""Benchmark the feed code (run by hand: `.venv/bin/python bench/feeds.py`).

Three figures, each printed with its peer:

1. throughput: a local firehose (a subprocess on core 1 sending Binance diff-depth and
   trade frames as fast as the socket takes them) read by the exporter's FeedRunner on
   core 0 for --duration seconds, and by the feeds process (the child's CPU, and the
   exporter's for the snapshots): messages/s and CPU per 1,000 messages. Peers, on the
   same firehose: aiohttp's WebSocket client receiving only (the floor of any Python
   reader on aiohttp), and receive + orjson parse (what any JSON consumer pays).
2. probe latency: the real Exporter probing a 50 ms target at 500 probes/s, with and
   without a feed delivering 5,000 messages/s, the feed in its own process as `run
   --feeds` has it (--in-process: also in the exporter's loop, each pair, side by side;
   --child-cores: where the child runs); latency error (reported minus 50 ms) p50/p99
   and the exporter loop's lateness, in --pairs pairs of runs (order alternating), with
   the per-pair differences and their spread. `--only square`: the
   same in one run, the feed switched on and off every --window seconds (a square
   wave), figures per --block seconds: drift in the machine's load weighs on both sides.
3. silence: a feed at 100 msg/s whose server goes quiet (connection open); time from the
   last data message to the `silence` disconnect heard by the store's listeners, in the
   loop and through the feeds process, against max_silence + 1 s.

Loopback only; every run is bounded in time. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import free_port, pct, target, wait_http
from bench.worker import bench_config
from exporter.app import Exporter, build_app
from exporter.feeds.config import Backoff, FeedsConfig, FeedSpec
from exporter.feeds.process import ChildOptions, FeedProcess
from exporter.feeds.runner import FeedManager, FeedRunner
from exporter.feeds.state import FeedState, FeedStore
from exporter.feeds.venues import Venue
from exporter.model import ProbeResult
from exporter.web.server import serve

READER_CORE, SIDE_CORE = {0}, {1}
CHILD = ChildOptions(log_level="warning")  # the feeds process as `run --feeds` starts it (its info lines off)
DELAY = 0.050


# ---------------------------------------------------------------- the firehose (a subprocess)


async def firehose(request: web.Request) -> web.WebSocketResponse:
    """?rate=N messages/s (0: as fast as the socket takes them); ?quiet_after=S: stop
    sending after S seconds, connection kept open; ?on_off=S: send during the even
    S-second windows of the wall clock only (`int(time.time() / S) % 2 == 0`), quiet in
    the odd ones, connection kept open (the square-wave latency scenario)."""
    rate = float(request.query.get("rate", "0"))
    quiet_after = float(request.query.get("quiet_after", "0"))
    on_off = float(request.query.get("on_off", "0"))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    reader = asyncio.create_task(_drain(ws))
    loop = asyncio.get_running_loop()
    start = loop.time()
    u = 1000  # message counter
    depth_u = 1000  # the diff-depth stream's update id: contiguous
    batch = 50 if rate == 0 else max(1, int(rate / 200))
    period = 0.0 if rate == 0 else batch / rate
    next_at = start
    if rate == 0:
        await _flood(ws)
        reader.cancel()
        return ws
    try:
        while not ws.closed:
            if quiet_after and loop.time() - start >= quiet_after:
                await asyncio.sleep(3600)
            if on_off and int(time.time() / on_off) % 2:  # an odd window: quiet until it ends
                await asyncio.sleep(on_off - time.time() % on_off)
                next_at = loop.time()
                continue
            ms = int(time.time() * 1000)
            for _ in range(batch):
                u += 1
                if u % 5:
                    depth_u += 1
                    text = f'{{"e":"depthUpdate","E":{ms},"s":"BTCUSDT","U":{depth_u},"u":{depth_u},"b":[["60000.10","0.5"]],"a":[]}}'
                else:
                    text = f'{{"e":"trade","E":{ms},"s":"BTCUSDT","t":{u},"p":"{60000 + u % 7}.5","q":"0.010","T":{ms},"m":true,"M":true}}'
                await ws.send_str(text)
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - loop.time()))
    except (ConnectionError, RuntimeError):
        pass
    finally:
        reader.cancel()
    return ws


def _frame(text: str) -> bytes:
    """An unmasked server text frame (RFC 6455 5.2), FIN set."""
    data = text.encode()
    n = len(data)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + data


async def _flood(ws: web.WebSocketResponse) -> None:
    """As fast as the reader takes them: frames built in batches and written straight to
    the transport, so that one Python process outpaces the reader under test (aiohttp's
    send_str per frame would make the firehose the bottleneck)."""
    transport = ws._req.transport if ws._req is not None else None
    assert transport is not None
    u, depth_u = 1000, 1000
    while not transport.is_closing():
        ms = int(time.time() * 1000)
        frames = []
        for _ in range(1000):
            u += 1
            if u % 5:
                depth_u += 1
                frames.append(_frame(f'{{"e":"depthUpdate","E":{ms},"s":"BTCUSDT","U":{depth_u},"u":{depth_u},"b":[["60000.10","0.5"]],"a":[]}}'))
            else:
                frames.append(_frame(f'{{"e":"trade","E":{ms},"s":"BTCUSDT","t":{u},"p":"{60000 + u % 7}.5","q":"0.010","T":{ms},"m":true,"M":true}}'))
        transport.write(b"".join(frames))
        while transport.get_write_buffer_size() > 4 << 20 and not transport.is_closing():  # noqa: ASYNC110 - a transport's buffer has no event to wait on
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


def serve_firehose(port: int) -> None:
    os.sched_setaffinity(0, SIDE_CORE)
    app = web.Application()
    app.router.add_get("/ws", firehose)
    app.router.add_get("/health", lambda r: _ok())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _ok() -> web.Response:
    return web.Response(text="ok")


def start_side(args: list[str], health: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["taskset", "-c", "1", sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(health)
    return proc


# ---------------------------------------------------------------- 1. throughput


def spec(url: str, max_silence: float = 30.0) -> FeedSpec:
    return FeedSpec(
        "bench", "firehose", Venue.BINANCE, url, ('{"method":"SUBSCRIBE","params":[],"id":1}',), max_silence=max_silence, backoff=Backoff(0.1, 1.0, 60.0)
    )


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) of another process, from /proc (0 when gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pid(feeds: object) -> int | None:
    process = feeds.process if isinstance(feeds, FeedProcess) else None
    return process.pid if process is not None else None


async def measure_process(url: str, warmup: float, duration: float) -> tuple[float, float, float]:
    """The feeds process (worker.py) reading the firehose, the mirror in this process:
    msg/s, the child's CPU ms and this side's per 1,000 messages."""
    store = FeedStore()
    feeds = FeedProcess(store, CHILD)
    feeds.apply(FeedsConfig((spec(url),), "bench"))
    await feeds.start()
    await asyncio.sleep(warmup)
    state = next(iter(store))
    pid = child_pid(feeds)
    n0, k0, c0, t0 = state.messages, cpu_of(pid), cpu(), time.monotonic()
    await asyncio.sleep(duration)
    n1, k1, c1, t1 = state.messages, cpu_of(pid), cpu(), time.monotonic()
    await feeds.stop()
    assert state.gaps == 0 and state.malformed == 0 and n1 > n0, (state.gaps, state.malformed, n0, n1)
    return (n1 - n0) / (t1 - t0), (k1 - k0) / (n1 - n0) * 1000, (c1 - c0) / (n1 - n0) * 1000


async def measure_runner(url: str, warmup: float, duration: float) -> tuple[float, float]:
    state = FeedState(spec(url))
    async with aiohttp.ClientSession() as session:
        runner = FeedRunner(state.spec, state, session)
        runner.start()
        await asyncio.sleep(warmup)
        n0, c0, t0 = state.messages, cpu(), time.monotonic()
        await asyncio.sleep(duration)
        n1, c1, t1 = state.messages, cpu(), time.monotonic()
        await runner.stop()
    assert state.gaps == 0 and state.malformed == 0, (state.gaps, state.malformed)
    return (n1 - n0) / (t1 - t0), (c1 - c0) / (n1 - n0) * 1000


async def measure_peer(url: str, warmup: float, duration: float, parse: bool) -> tuple[float, float]:
    count = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=1 << 20) as ws:

        async def read() -> None:
            nonlocal count
            async for msg in ws:
                if parse:
                    orjson.loads(msg.data)
                count += 1

        task = asyncio.create_task(read())
        await asyncio.sleep(warmup)
        n0, c0, t0 = count, cpu(), time.monotonic()
        await asyncio.sleep(duration)
        n1, c1, t1 = count, cpu(), time.monotonic()
        task.cancel()
    return (n1 - n0) / (t1 - t0), (c1 - c0) / (n1 - n0) * 1000


async def throughput(port: int, warmup: float, duration: float, repeat: int) -> None:
    url = f"ws://127.0.0.1:{port}/ws?rate=0"
    rows: dict[str, list[tuple[float, float]]] = {
        "exporter FeedRunner (parse, rule, sequence, lag, price)": [],
        "peer: aiohttp receive only": [],
        "peer: receive + orjson.loads": [],
    }
    child: list[tuple[float, float, float]] = []
    for _ in range(repeat):
        rows["exporter FeedRunner (parse, rule, sequence, lag, price)"].append(await measure_runner(url, warmup, duration))
        child.append(await measure_process(url, warmup, duration))
        rows["peer: aiohttp receive only"].append(await measure_peer(url, warmup, duration, parse=False))
        rows["peer: receive + orjson.loads"].append(await measure_peer(url, warmup, duration, parse=True))
    print(f"\n1. Throughput on one core (reader pinned to core 0, firehose on core 1), median of {repeat} x {duration:g} s")
    print(f"   {'reader':58} {'msg/s':>10} {'CPU ms / 1,000 msg':>20}")
    for name, values in rows.items():
        print(f"   {name:58} {statistics.median(v[0] for v in values):>10,.0f} {statistics.median(v[1] for v in values) * 1000:>20.1f}")
    name = "exporter feeds process (child: runner + snapshots)"
    print(f"   {name:58} {statistics.median(v[0] for v in child):>10,.0f} {statistics.median(v[1] for v in child) * 1000:>20.1f}")
    print(f"   {'   + the exporter applying the snapshots (mirror)':58} {'':>10} {statistics.median(v[2] for v in child) * 1000:>20.1f}")


# ---------------------------------------------------------------- 2. probe latency with feeds


async def latency_run(
    target: str, feed_url: str | None, rate: float, endpoints: int, warmup: float, duration: float, child: bool = True, child_cores: set[int] | None = None
) -> tuple[list[float], float]:
    samples, late = await timed_latency_run(target, feed_url, rate, endpoints, warmup, duration, child, child_cores)
    return [error for _, error in samples], late


async def timed_latency_run(
    target: str, feed_url: str | None, rate: float, endpoints: int, warmup: float, duration: float, child: bool = True, child_cores: set[int] | None = None
) -> tuple[list[tuple[float, float]], float]:
    """(wall time the probe started, latency error in ms) of every successful probe in
    the measured window, and the p99 of the exporter's loop lateness (a 5 ms sleeper in
    its loop: how late the loop wakes, whatever the target does; ms). `child`: the feeds in their own process, as `run --feeds` has
    them (it inherits this process's core 0 unless `child_cores` says otherwise);
    without it, in the exporter's loop (`--feeds.in-process`)."""
    config = bench_config(endpoints, rate, target, False, 2.0)
    feeds = FeedsConfig((spec(feed_url),), "bench") if feed_url else None
    exporter = Exporter(lambda: config, feeds_loader=(lambda: feeds) if feeds else None, process_metrics=False, feeds_process=CHILD if child else None)
    errors: list[tuple[float, float]] = []
    measuring = False

    def on_result(r: ProbeResult) -> None:
        if measuring and r.ok and r.duration is not None:
            errors.append((time.time() - r.duration, (r.duration - DELAY) * 1000))

    exporter.subscribe(on_result)
    runner, _ = await serve(build_app(exporter, handle_sighup=False), "127.0.0.1", 0)
    pid = None
    if isinstance(exporter.feeds, FeedProcess):
        for _ in range(500):  # the supervisor spawns it right after start
            if (pid := child_pid(exporter.feeds)) is not None:
                break
            await asyncio.sleep(0.01)
        if pid is not None and child_cores:
            os.sched_setaffinity(pid, child_cores)
    await asyncio.sleep(warmup)
    loop = asyncio.get_running_loop()
    lateness: list[float] = []

    async def sleeper() -> None:
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            lateness.append((loop.time() - t - 0.005) * 1000)

    ticker = asyncio.create_task(sleeper())
    measuring = True
    m0, c0, k0 = sum(f.messages for f in exporter.feed_store), cpu(), cpu_of(pid)
    await asyncio.sleep(duration)
    measuring = False
    ticker.cancel()
    delivered, busy, child_busy = (sum(f.messages for f in exporter.feed_store) - m0) / duration, (cpu() - c0) / duration, (cpu_of(pid) - k0) / duration
    await runner.cleanup()
    where = f"; feeds process CPU {child_busy:.0%} (cores {sorted(child_cores if child_cores else os.sched_getaffinity(0))})" if pid else ""
    late = pct(lateness, 99)
    print(
        f"      (exporter CPU {busy:.0%} of core 0{where}; feed delivered {delivered:,.0f} msg/s; loop lateness p99 {late:.2f} ms;"
        f" load average {os.getloadavg()[0]:.1f})"
    )
    return errors, late


async def latency(
    target_url: str,
    fire_port: int,
    rate: float,
    feed_rate: float,
    warmup: float,
    duration: float,
    pairs: int,
    elsewhere: bool,
    in_process: bool,
    child_cores: set[int] | None,
) -> None:
    """Pairs of runs without and with the feed, the order alternating from pair to pair
    (A B, B A, A B ...) so that a load drifting over the minutes weighs on both sides
    alike; the verdict reads the per-pair differences, not two medians taken apart.
    The feed runs in its own process, as `run --feeds` has it; with `in_process`, each
    pair also has a run with the feed in the exporter's loop (`--feeds.in-process`), the
    figure before the feeds process, measured under the same load."""
    feed_url = f"ws://127.0.0.1:{fire_port}/ws?rate={feed_rate:g}"
    endpoints = int(rate * 2)  # 2 s intervals
    without, with_feed = "without feeds", "feed in its own process"
    loop_feed, aside = "feed in the exporter's loop", "firehose read by another process"
    runs: dict[str, list[tuple[float, float]]] = {without: [], with_feed: [], loop_feed: [], aside: []}
    late: dict[str, list[float]] = {name: [] for name in runs}
    cores = f"cores {sorted(child_cores)}" if child_cores else "core 0, the exporter's"
    print(
        f"\n2. Probe latency error at {rate:g} probes/s ({endpoints} endpoints, 50 ms target), a feed at {feed_rate:,.0f} msg/s in a process of its own ({cores})"
    )
    print(f"   {pairs} pairs of runs (without, with; the order alternates), {warmup:g} s warm-up + {duration:g} s measured each")
    if in_process:
        print(f"   ('{loop_feed}': a third run per pair, --feeds.in-process, the figure before the feeds process)")
    if elsewhere:
        print(f"   ('{aside}': the same firehose load on core 1, consumed by a process of its own: what the firehose alone costs the target)")
    for i in range(pairs):
        order: list[tuple[str, str | None, bool]] = [(without, None, True), (with_feed, feed_url, True)]
        if i % 2:
            order.reverse()
        if in_process:
            order.insert(1, (loop_feed, feed_url, False))
        if elsewhere:
            order.append((aside, None, True))
        for name, url, child in order:
            consumer = await asyncio.create_subprocess_exec("taskset", "-c", "1", sys.executable, __file__, "--consume", feed_url) if name == aside else None
            try:
                errors, lateness = await latency_run(target_url, url, rate, endpoints, warmup, duration, child, child_cores)
                late[name].append(lateness)
            finally:
                if consumer is not None:
                    consumer.kill()
                    await consumer.wait()
            runs[name].append((pct(errors, 50), pct(errors, 99)))
            print(f"   pair {i + 1} {name:32} p50 {runs[name][-1][0]:7.2f} ms   p99 {runs[name][-1][1]:7.2f} ms   ({len(errors)} probes)")
        for arm in (with_feed, loop_feed):
            if runs[arm]:
                d50 = runs[arm][-1][0] - runs[without][-1][0]
                d99 = runs[arm][-1][1] - runs[without][-1][1]
                print(f"   pair {i + 1} difference ({arm} - without){' ' * max(0, 14 - len(arm) + 18)} p50 {d50:+7.2f} ms   p99 {d99:+7.2f} ms")
    for name, values in runs.items():
        if values:
            print(f"   median {name:29} p50 {statistics.median(v[0] for v in values):7.2f} ms   p99 {statistics.median(v[1] for v in values):7.2f} ms")
    for arm in (with_feed, loop_feed):
        if runs[arm]:
            print(f"   {arm}:")
            for q, label in ((0, "p50"), (1, "p99")):
                _spread(label, [w[q] - o[q] for w, o in zip(runs[arm], runs[without], strict=True)])
            _spread("loop lateness p99", [w - o for w, o in zip(late[arm], late[without], strict=True)])


async def latency_square(
    target_url: str,
    fire_port: int,
    rate: float,
    feed_rate: float,
    warmup: float,
    window: float,
    blocks: int,
    block: float,
    in_process: bool = False,
    child_cores: set[int] | None = None,
) -> None:
    """One exporter and one feed connection; the firehose sends `feed_rate` msg/s in the
    even `window`-second windows of the wall clock and nothing in the odd ones. Each probe
    is put in the window it started in (dropped if it started within MARGIN of the
    window's start or ended in the next one): "with" and "without" alternate every
    `window` seconds, so a load that drifts over seconds weighs on both alike. Figures per
    `block` seconds (a pair: as many windows of each), then across blocks."""
    margin = 0.15
    feed_url = f"ws://127.0.0.1:{fire_port}/ws?rate={feed_rate:g}&on_off={window:g}"
    endpoints = int(rate * 2)
    duration = blocks * block
    where = "in the exporter's loop (--feeds.in-process)" if in_process else f"in its own process ({sorted(child_cores) if child_cores else 'core 0'})"
    print(
        f"\n2b. Probe latency error at {rate:g} probes/s, the feed ({feed_rate:,.0f} msg/s, {where}) switched on and off every {window:g} s"
        f" in one run of {duration:g} s"
    )
    print(f"   (probes started within {margin:g} s of a switch, or ending after the next one, left out; {blocks} blocks of {block:g} s)")
    samples, _ = await timed_latency_run(target_url, feed_url, rate, endpoints, warmup, duration, not in_process, child_cores)
    by_block: dict[int, dict[bool, list[float]]] = {}
    for started, error in samples:
        w = int(started // window)
        ended = started + (DELAY + error / 1000)
        if started - w * window < margin or int(ended // window) != w:
            continue
        by_block.setdefault(int(started // block), {True: [], False: []})[w % 2 == 0].append(error)
    d50s, d99s = [], []
    pooled: dict[bool, list[float]] = {True: [], False: []}
    for i, (_, sides) in enumerate(sorted(by_block.items())):
        if len(sides[True]) < 100 or len(sides[False]) < 100:
            continue  # a block cut by the start or the end of the run
        on, off = sides[True], sides[False]
        pooled[True] += on
        pooled[False] += off
        d50s.append(pct(on, 50) - pct(off, 50))
        d99s.append(pct(on, 99) - pct(off, 99))
        print(
            f"   block {i + 1:2}  without p50 {pct(off, 50):6.2f} p99 {pct(off, 99):7.2f} ms ({len(off)})   with p50 {pct(on, 50):6.2f} p99 {pct(on, 99):7.2f} ms ({len(on)})"
            f"   difference p50 {d50s[-1]:+6.2f} p99 {d99s[-1]:+7.2f} ms"
        )
    print(
        f"   pooled     without p50 {pct(pooled[False], 50):6.2f} p99 {pct(pooled[False], 99):7.2f} ms   with p50 {pct(pooled[True], 50):6.2f} p99 {pct(pooled[True], 99):7.2f} ms"
    )
    _spread("p50", d50s)
    _spread("p99", d99s)


def _spread(label: str, diffs: list[float]) -> None:
    diffs = sorted(diffs)
    if not diffs:
        print(f"   {label}: no complete block")
        return
    quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
    print(
        f"   {label} difference (with - without): median {statistics.median(diffs):+.2f} ms, quartiles {quartiles[0]:+.2f} / {quartiles[2]:+.2f} ms, "
        f"range {diffs[0]:+.2f} to {diffs[-1]:+.2f} ms, {sum(d > 0.5 for d in diffs)} of {len(diffs)} worse by more than 0.5 ms"
    )


# ---------------------------------------------------------------- 3. silence detection


async def silence(port: int, max_silence: float, repeat: int) -> None:
    """Last data message -> the `silence` disconnect heard by the store's listeners (what
    drives the provider status): in the exporter's loop, then through the feeds process
    (judged in the child, heard by the exporter's mirror: one snapshot later at most)."""
    print(f"\n3. Silent feed detection (max_silence {max_silence:g} s; goal: within max_silence + 1 s = {max_silence + 1:g} s)")
    for where in ("in the exporter's loop", "through the feeds process"):
        times = []
        for _ in range(repeat):
            store = FeedStore()
            feeds = FeedManager(store) if where.startswith("in") else FeedProcess(store, CHILD)
            feeds.apply(FeedsConfig((spec(f"ws://127.0.0.1:{port}/ws?rate=100&quiet_after=1", max_silence),), "bench"))
            state = next(iter(store))
            heard: list[float] = []
            done = asyncio.Event()

            def on_change(s: FeedState, heard: list[float] = heard, done: asyncio.Event = done) -> None:
                if not s.connected and s.last_reason == "silence" and not heard:
                    heard.append(time.time())
                    done.set()

            store.listeners.append(on_change)
            await feeds.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), max_silence + 10)
            await feeds.stop()
            assert heard and state.last_message_at is not None, "silence not detected"
            times.append(heard[0] - state.last_message_at)
            print(f"   {where}: last data message -> silence heard by the store's listeners: {times[-1]:.3f} s")
        print(f"   {where}: worst {max(times):.3f} s, median {statistics.median(times):.3f} s (bound {max_silence + 1:g} s)")


# ---------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    fire_port = free_port()
    fire = start_side([__file__, "--firehose", str(fire_port)], f"http://127.0.0.1:{fire_port}/health")
    os.sched_setaffinity(0, READER_CORE)
    with target() as (target_url, target_description):  # nginx + echo on core 1 (bench/run.py), else bench/target.py
        print(f"target: {target_description}")
        try:
            await _scenarios(args, fire_port, target_url)
        finally:
            fire.kill()  # the firehose may hold a quiet connection open for an hour
            fire.wait(5)


async def _scenarios(args: argparse.Namespace, fire_port: int, target_url: str) -> None:
    if "throughput" in args.only:
        await throughput(fire_port, args.warmup, args.duration, args.repeat)
    cores = {int(c) for c in args.child_cores.split(",")} if args.child_cores else None
    if "square" in args.only:
        await latency_square(target_url, fire_port, args.rate, args.feed_rate, args.warmup, args.window, args.blocks, args.block, False, cores)
        if args.in_process:
            await latency_square(target_url, fire_port, args.rate, args.feed_rate, args.warmup, args.window, args.blocks, args.block, True)
    if "latency" in args.only:
        await latency(target_url, fire_port, args.rate, args.feed_rate, args.warmup, args.duration, args.pairs, args.elsewhere, args.in_process, cores)
    if "silence" in args.only:
        await silence(fire_port, args.max_silence, args.repeat)


def parse_args(argv: list[str] | None = None) -> Any:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--firehose", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--consume", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--only", default="throughput,latency,silence")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rate", type=float, default=500.0, help="probes per second in the latency scenario")
    p.add_argument("--feed-rate", type=float, default=5000.0, help="feed messages per second in the latency scenario")
    p.add_argument("--max-silence", type=float, default=2.0)
    p.add_argument("--pairs", type=int, default=5, help="pairs of without/with-feed runs in the latency scenario")
    # 0.7 s, not 1 s: the probes' fixed 2 s intervals would put the same endpoints (and,
    # after a stall regroups them, more of them) in every "on" window; a 1.4 s cycle
    # takes each endpoint through both sides within 14 s, one block.
    p.add_argument("--window", type=float, default=0.7, help="square: seconds the feed is on, then off")
    p.add_argument("--blocks", type=int, default=12, help="square: blocks measured")
    p.add_argument("--block", type=float, default=14.0, help="square: seconds per block (a whole number of on/off cycles and probe intervals)")
    p.add_argument("--elsewhere", action="store_true", help="latency: add a run per pair with the firehose consumed by another process")
    p.add_argument("--in-process", action="store_true", help="latency, square: also measure the feed in the exporter's loop (--feeds.in-process)")
    p.add_argument("--child-cores", default="", help="cores for the feeds process, e.g. 1 or 0,1 (default: inherited, core 0 with the exporter)")
    return p.parse_args(argv)


if __name__ == "__main__":
    parsed = parse_args()
    if parsed.firehose:
        serve_firehose(parsed.firehose)
    elif parsed.consume:
        asyncio.run(measure_peer(parsed.consume, 0.0, 3600.0, parse=True))
    else:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only: no per-probe lines
        print(f"bench/feeds.py on {os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}")
        asyncio.run(main(parsed))
