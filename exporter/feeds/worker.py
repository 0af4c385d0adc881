"""The feeds process: `python -m exporter.feeds.worker`, started by process.py.

It runs the same FeedManager and FeedStore as the in-process mode, on its own event loop
and GIL, so a feed's frames never wait for, or delay, a probe's callbacks. Everything a
feed judges (silence, ping timeouts, gaps, backoff) is judged here, where the messages
are. It reads `Configure` frames on stdin and writes `Snapshot` frames on stdout
(wire.py); stdin closing (the parent stopping, or dying) stops it.

Snapshots: every PERIOD seconds the feeds that changed since the last one; a connect or
disconnect at once (so the parent's listeners see every transition, a dip shorter than
PERIOD included). Bounded: when the pipe's buffer holds more than OUT_BUFFER bytes (the
parent is not reading), no snapshot is written; the feeds stay "changed" and the next
snapshot after the parent caught up carries their latest state. The child never holds
more than OUT_BUFFER plus one snapshot, however long the parent stalls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from typing import Protocol

import structlog

from .. import logs
from ..cli import run_async
from ..logs import configure_logging
from .runner import FeedManager, cancel
from .state import FeedState, FeedStore
from .wire import HEADER, PERIOD, Configure, FeedSnapshot, FrameError, Snapshot, decode, encode, fingerprint, frame_length, snapshot

log = structlog.get_logger()

HEARTBEAT = 1.0  # an empty snapshot when nothing changed for this long: the parent knows we live
OUT_BUFFER = 256 * 1024  # bytes unread by the parent above which snapshots are skipped


class Sink(Protocol):
    """The part of an asyncio write transport the publisher uses."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...


class Publisher:
    """Writes coalesced snapshots of the store's changed feeds to `sink`."""

    def __init__(self, store: FeedStore, sink: Sink, limit: int = OUT_BUFFER) -> None:
        self.store = store
        self.sink = sink
        self.limit = limit
        self.generation = -1
        self.sent: dict[tuple[str, str], tuple[bool, int, int, int, int]] = {}
        self.written = 0  # snapshots written
        self.skipped = 0  # flushes skipped because the parent was not reading

    def configure(self, generation: int) -> None:
        """A new config: every feed is sent again, tagged with its generation."""
        self.generation = generation
        self.sent.clear()

    def flush(self, force: bool = False) -> None:
        """Write the changed feeds (with `force`, a snapshot even if none changed)."""
        if self.sink.get_write_buffer_size() > self.limit:
            self.skipped += 1
            return
        changed: list[FeedSnapshot] = []
        for f in self.store:
            mark = fingerprint(f)
            if self.sent.get(f.key) != mark:
                self.sent[f.key] = mark
                changed.append(snapshot(f))
        if len(self.sent) > len(self.store.feeds):  # feeds removed by a reload
            self.sent = {k: v for k, v in self.sent.items() if k in self.store.feeds}
        if changed or force:
            self.sink.write(encode(Snapshot(self.generation, tuple(changed))))
            self.written += 1


async def serve(period: float = PERIOD) -> int:
    loop = asyncio.get_running_loop()
    # Frames go to a copy of fd 1; fd 1 itself now points at stderr, so a stray print
    # from any library lands in the log, never in the middle of a frame.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, out)
    reader = asyncio.StreamReader(limit=2**16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)

    store = FeedStore()
    manager = FeedManager(store)
    publisher = Publisher(store, transport)

    def on_change(_: FeedState) -> None:
        if not transport.is_closing():
            publisher.flush()

    store.listeners.append(on_change)
    await manager.start()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)  # as the exporter (app.py): young collections are what costs

    async def tick() -> None:
        beat = max(1, round(HEARTBEAT / period))
        n, seen = 0, 0
        while not transport.is_closing():
            await asyncio.sleep(period)
            n += 1
            due = n % beat == 0
            publisher.flush(force=due and publisher.written == seen)  # nothing written for a beat
            if due:
                seen = publisher.written

    ticker = asyncio.create_task(tick())
    code = 0
    try:
        while True:
            header = await reader.readexactly(HEADER.size)
            record = decode(await reader.readexactly(frame_length(header)))
            if isinstance(record, Configure):
                publisher.configure(record.generation)
                manager.apply(record.config)
                log.info("feeds_process_configured", feeds=len(record.config.feeds), source=record.config.source, generation=record.generation)
    except asyncio.IncompleteReadError:
        pass  # the parent closed the pipe: stop
    except FrameError as e:
        log.error("feeds_process_bad_frame", error=str(e))
        code = 2
    finally:
        await cancel(ticker)
        await manager.stop()
        if not transport.is_closing():
            with contextlib.suppress(Exception):
                publisher.flush()  # the last disconnects
        transport.close()
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exporter.feeds.worker", description="the exporter's feeds process (started by the exporter)")
    p.add_argument("--log.level", dest="log_level", default="info")
    p.add_argument("--log.format", dest="log_format", default="json", choices=["json", "console"])
    p.add_argument("--period", type=float, default=PERIOD)
    args = p.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    # The parent owns the lifecycle: Ctrl-C at a terminal reaches the whole process group,
    # and a reload's SIGHUP is the parent's; the parent stops us by closing stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        return run_async(serve(args.period))  # uvloop as the exporter's own loop, when installed
    finally:
        logs.flush()


if __name__ == "__main__":
    sys.exit(main())
