"""What crosses the pipe between the exporter and its feeds process (process.py, worker.py).

Frames: a 4-byte big-endian length, then a pickle. Pickle because both ends are this
package's own code in one deployment (the child is started by the parent, from the same
files), the records are our own dataclasses, and it costs less CPU than any schema'd
format at a few frames a second. A frame over MAX_FRAME is refused: the reader stops
and the supervisor restarts the child, it never allocates what a corrupt length says.

Parent -> child: `Configure(generation, config)`; closing the pipe means "stop".
Child -> parent: `Snapshot(generation, feeds)`, the full state of each feed that changed
since the last snapshot the child sent (never a delta: a skipped snapshot loses
nothing, the next one carries the same feeds again, so the child can drop snapshots
when the parent is slow instead of queueing them).
"""

from __future__ import annotations

import pickle
import struct
from collections import Counter
from dataclasses import dataclass, field

from .config import FeedsConfig
from .state import FeedState, PricePoint

PERIOD = 0.1  # seconds between two snapshots (the default): the parent's view is at most this old
HEADER = struct.Struct(">I")
MAX_FRAME = 8 * 1024 * 1024  # FEEDS_MAX feeds x FEED_SYMBOLS prices is far below this


class FrameError(Exception):
    """A frame the reader cannot accept (a length over MAX_FRAME, an unknown record)."""


@dataclass(frozen=True, slots=True)
class Configure:
    generation: int
    config: FeedsConfig


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """One feed's state, as the child's FeedState has it (sequence positions stay in the
    child: only the checks there read them)."""

    key: tuple[str, str]
    connected: bool
    messages: int
    malformed: int
    gaps: int
    last_message_at: float | None
    connected_since: float | None
    last_reason: str | None
    last_malformed: str | None
    reconnects: dict[str, int]
    lag_counts: tuple[int, ...]
    lag_sum: float
    prices: dict[str, tuple[float, float, float]]  # symbol -> (price, seen_at, changed_at)


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int
    feeds: tuple[FeedSnapshot, ...]


def encode(record: Configure | Snapshot) -> bytes:
    body = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME:
        raise FrameError(f"a {type(record).__name__} of {len(body)} bytes is over {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    (n,) = HEADER.unpack(header)
    if n > MAX_FRAME:
        raise FrameError(f"a frame of {n} bytes announced (over {MAX_FRAME})")
    return int(n)


def decode(body: bytes) -> Configure | Snapshot:
    record = pickle.loads(body)  # our own child or parent, started from the same files (module docstring)
    if not isinstance(record, Configure | Snapshot):
        raise FrameError(f"an unexpected record ({type(record).__name__})")
    return record


def fingerprint(f: FeedState) -> tuple[bool, int, int, int, int]:
    """Changes whenever anything a snapshot carries does: every price, lag and
    last_message_at change comes with a message, every reason with a reconnect."""
    return (f.connected, f.messages, f.malformed, f.gaps, f.reconnects.total())


def snapshot(f: FeedState) -> FeedSnapshot:
    return FeedSnapshot(
        key=f.key,
        connected=f.connected,
        messages=f.messages,
        malformed=f.malformed,
        gaps=f.gaps,
        last_message_at=f.last_message_at,
        connected_since=f.connected_since,
        last_reason=f.last_reason,
        last_malformed=f.last_malformed,
        reconnects=dict(f.reconnects),
        lag_counts=tuple(f.lag.counts),
        lag_sum=f.lag.sum,
        prices={s: (p.price, p.seen_at, p.changed_at) for s, p in f.prices.items()},
    )


@dataclass(frozen=True, slots=True)
class Base:
    """What the mirror had counted when a child died: the next child counts from zero,
    the mirror adds this, so counters never go back (no false `resets()` in PromQL)."""

    messages: int = 0
    malformed: int = 0
    gaps: int = 0
    reconnects: Counter[str] = field(default_factory=Counter)
    lag_counts: tuple[int, ...] = ()
    lag_sum: float = 0.0

    @classmethod
    def of(cls, f: FeedState) -> Base:
        return cls(f.messages, f.malformed, f.gaps, Counter(f.reconnects), tuple(f.lag.counts), f.lag.sum)


def apply(f: FeedState, s: FeedSnapshot, base: Base | None) -> bool:
    """Write a snapshot into the mirror's FeedState in place (readers hold the object);
    returns whether the connection changed (connected, or a new disconnect), which the
    store's listeners hear."""
    b = base or Base()
    transition = (
        f.connected != s.connected or f.connected_since != s.connected_since or f.reconnects.total() != b.reconnects.total() + sum(s.reconnects.values())
    )
    f.connected = s.connected
    f.messages = b.messages + s.messages
    f.malformed = b.malformed + s.malformed
    f.gaps = b.gaps + s.gaps
    f.last_message_at = s.last_message_at if s.last_message_at is not None else f.last_message_at
    f.connected_since = s.connected_since
    f.last_reason = s.last_reason if s.last_reason is not None else f.last_reason
    f.last_malformed = s.last_malformed if s.last_malformed is not None else f.last_malformed
    f.reconnects = Counter(s.reconnects)
    f.reconnects.update(b.reconnects)
    if len(s.lag_counts) == len(f.lag.counts):
        counts = list(s.lag_counts)
        if len(b.lag_counts) == len(counts):
            counts = [x + y for x, y in zip(counts, b.lag_counts, strict=True)]
        f.lag.counts = counts
        f.lag.sum = b.lag_sum + s.lag_sum
        f.lag.count = sum(counts)
    prices = f.prices
    for symbol, (price, seen_at, changed_at) in s.prices.items():
        p = prices.get(symbol)
        if p is None:
            prices[symbol] = PricePoint(price, seen_at, changed_at)
        else:
            p.price, p.seen_at, p.changed_at = price, seen_at, changed_at
    return transition
