"""The feeds process's pipe, without a process: the child's publisher coalesces and stays
bounded when the parent stops reading; the mirror applies snapshots in place, keeps
counting across a child's restart, and ignores snapshots of an older config."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from exporter.feeds.config import FeedsConfig, FeedSpec
from exporter.feeds.process import FeedProcess
from exporter.feeds.state import FeedState, FeedStore, Reason
from exporter.feeds.venues import Venue
from exporter.feeds.wire import HEADER, MAX_FRAME, Base, FrameError, Snapshot, apply, decode, encode, frame_length, snapshot
from exporter.feeds.worker import Publisher

SPEC = FeedSpec("binance", "trades", Venue.BINANCE, "wss://example.invalid/ws", ("{}",))
OTHER = FeedSpec("okx", "tickers", Venue.OKX, "wss://example.invalid/okx", ("{}",))


class Sink:
    """A write transport whose buffer the test fills and drains."""

    def __init__(self) -> None:
        self.buffered = 0
        self.frames: list[Snapshot] = []

    def write(self, data: bytes) -> None:
        record = decode(data[HEADER.size :])
        assert isinstance(record, Snapshot)
        self.frames.append(record)

    def get_write_buffer_size(self) -> int:
        return self.buffered


def child_store(*specs: FeedSpec) -> FeedStore:
    store = FeedStore()
    store.apply(FeedsConfig(specs))
    return store


def test_the_publisher_sends_only_changed_feeds() -> None:
    store = child_store(SPEC, OTHER)
    sink = Sink()
    publisher = Publisher(store, sink, limit=1000)
    publisher.configure(7)
    publisher.flush()
    assert [sorted(s.key for s in f.feeds) for f in sink.frames] == [sorted([OTHER.key, SPEC.key])]  # a new config: everything once
    assert sink.frames[0].generation == 7
    publisher.flush()
    assert len(sink.frames) == 1  # nothing changed, nothing sent
    store.feeds[SPEC.key].messages += 5
    publisher.flush()
    assert [s.key for s in sink.frames[-1].feeds] == [SPEC.key] and sink.frames[-1].feeds[0].messages == 5
    publisher.flush(force=True)
    assert sink.frames[-1].feeds == ()  # the heartbeat: empty, but written


def test_a_stalled_parent_costs_the_child_no_memory_and_loses_nothing() -> None:
    """While the pipe is full nothing is written or queued, however many changes; the
    first flush after it drained carries each changed feed once, with its latest state."""
    store = child_store(SPEC, OTHER)
    sink = Sink()
    publisher = Publisher(store, sink, limit=1000)
    publisher.configure(1)
    publisher.flush()
    sent = len(sink.frames)
    sink.buffered = 5000  # the parent stopped reading
    state = store.feeds[SPEC.key]
    for i in range(10_000):
        state.messages += 1
        state.on_connected(float(i)) if i % 2 else state.on_disconnected(Reason.CLOSED)
        publisher.flush()
    assert len(sink.frames) == sent and publisher.skipped == 10_000
    sink.buffered = 0
    publisher.flush()
    assert len(sink.frames) == sent + 1
    (only,) = sink.frames[-1].feeds
    assert only.key == SPEC.key and only.messages == 10_000 and only.reconnects == {"closed": 5000} and only.connected


def test_the_mirror_applies_in_place_and_counts_on_across_a_restart() -> None:
    child = FeedState(SPEC)
    child.on_connected(100.0)
    child.messages = 10
    child.lag.observe(0.2)
    child.prices = {}
    mirror = FeedState(SPEC)
    lag = mirror.lag
    assert apply(mirror, snapshot(child), None) is True  # connected: the listeners hear it
    assert mirror.connected and mirror.messages == 10 and mirror.lag is lag and mirror.lag.count == 1
    child.messages = 20
    assert apply(mirror, snapshot(child), None) is False  # data only: no transition
    # The child dies: the parent marks the feed down and keeps what it had counted.
    mirror.on_disconnected(Reason.ERROR)
    base = Base.of(mirror)
    fresh = FeedState(SPEC)  # the next child counts from zero
    fresh.on_connected(200.0)
    fresh.messages = 3
    fresh.lag.observe(0.2)
    assert apply(mirror, snapshot(fresh), base) is True
    assert mirror.connected and mirror.messages == 23 and mirror.lag.count == 2
    assert mirror.reconnects == Counter({Reason.ERROR: 1}) and mirror.last_reason == Reason.ERROR


def test_a_dip_between_two_snapshots_is_still_a_transition() -> None:
    """Disconnected and connected again: `connected` looks unchanged, the reconnect is not."""
    child = FeedState(SPEC)
    child.on_connected(1.0)
    mirror = FeedState(SPEC)
    apply(mirror, snapshot(child), None)
    child.on_disconnected(Reason.SILENCE)
    child.on_connected(1.0)  # the same second: connected_since alone would not tell
    assert apply(mirror, snapshot(child), None) is True
    assert mirror.reconnects[Reason.SILENCE] == 1


async def test_snapshots_of_an_older_config_are_ignored() -> None:
    store = FeedStore()
    heard: list[bool] = []
    store.listeners.append(lambda f: heard.append(f.connected))
    feeds = FeedProcess(store)
    feeds.apply(FeedsConfig((SPEC,)))
    child = FeedState(SPEC)
    child.on_connected(1.0)
    child.messages = 99
    feeds._snapshot(Snapshot(feeds.generation - 1, (snapshot(child),)))
    assert store.feeds[SPEC.key].messages == 0 and heard == []
    feeds._snapshot(Snapshot(feeds.generation, (snapshot(child),)))
    assert store.feeds[SPEC.key].messages == 99 and heard == [True]


def test_frames_over_the_bound_or_of_another_kind_are_refused() -> None:
    with pytest.raises(FrameError, match="over"):
        frame_length(HEADER.pack(MAX_FRAME + 1))
    with pytest.raises(FrameError, match="unexpected record"):
        decode(pickle.dumps({"not": "a record"}))
    assert frame_length(encode(Snapshot(1, ()))[: HEADER.size]) > 0
