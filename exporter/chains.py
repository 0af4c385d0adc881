"""Chain heads: what every RPC endpoint of one chain reports, and the consensus among them.

An RPC node can answer 200 fast from a view hours old, or from another chain, and look
healthy to any HTTP check. Heads are only meaningful against each other: the reference
head of a chain is the **second-highest** head among its endpoints on the right chain
(the highest when only two report), so one rogue node far ahead cannot make every
healthy node look lagging (eRPC learned this in production: a wrong-chain upstream
~30M blocks ahead evicted all healthy ones). Lag is measured against that reference.

`ChainHeads` is the one owner of a chain's observations; probes of the `chain_head` kind
record into it and read their lag from it, the store and /metrics read it. The rules
are pure functions, tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# A head older than this many of the chain's probe rounds no longer takes part in the
# consensus: an endpoint that stopped answering must not hold the reference.
OBSERVATION_TTL_ROUNDS = 3
# Chain-aware defaults (docs/chains.md): allowed lag in blocks is what a minute of blocks
# is, at least 2 (web3-proxy uses max(5, round(60 s / block time)); 2 keeps Bitcoin's
# 10-minute blocks meaningful); in seconds a minute, or three blocks if longer; a head
# may stand still for ten blocks, at least a minute (Bitcoin's block times are
# exponential: an hour without a block happens about once in 400).
LAG_WINDOW = 60.0
MIN_LAG_BLOCKS = 2
STILLNESS_BLOCKS = 10
MIN_STILLNESS = 60.0


def default_max_lag_blocks(block_time: float) -> int:
    return max(MIN_LAG_BLOCKS, round(LAG_WINDOW / block_time))


def default_max_lag_seconds(block_time: float) -> float:
    return max(LAG_WINDOW, 3 * block_time)


def default_max_stillness(block_time: float) -> float:
    return max(MIN_STILLNESS, STILLNESS_BLOCKS * block_time)


@dataclass(frozen=True, slots=True)
class Head:
    """One endpoint's report of its head at one probe."""

    block: int  # block number, or Solana's slot
    timestamp: float | None  # that block's own time, unix seconds (None when unknown)
    seen_at: float  # when we learned it (wall clock)
    right_chain: bool = True  # False: the node answered for another chain id
    syncing: bool = False


@dataclass(frozen=True, slots=True)
class Reference:
    """The chain's reference head and how many right-chain endpoints reported."""

    block: int
    timestamp: float | None
    reporters: int
    agreeing: int  # endpoints within the allowed lag of the reference (and not ahead beyond it)


@dataclass(frozen=True, slots=True)
class Lag:
    blocks: int  # reference minus this head: negative when ahead of it
    seconds: float | None  # reference block's time minus this block's; None when one is unknown


def reference(heads: Iterable[Head], max_lag_blocks: int) -> Reference | None:
    """The second-highest head among right-chain reports (the highest when only two
    report, the only one when one does); None when nobody on the right chain reported."""
    candidates = sorted((h for h in heads if h.right_chain), key=lambda h: h.block, reverse=True)
    if not candidates:
        return None
    ref = candidates[1] if len(candidates) >= 3 else candidates[0]
    agreeing = sum(1 for h in candidates if abs(ref.block - h.block) <= max_lag_blocks)
    return Reference(ref.block, ref.timestamp, len(candidates), agreeing)


def lag(head: Head, ref: Reference) -> Lag:
    seconds = None if head.timestamp is None or ref.timestamp is None else ref.timestamp - head.timestamp
    return Lag(ref.block - head.block, seconds)


def is_lagging(lag_: Lag, max_blocks: int, max_seconds: float) -> bool:
    """Behind the reference beyond either bound (being ahead is not lagging)."""
    return lag_.blocks > max_blocks or (lag_.seconds is not None and lag_.seconds > max_seconds)


class ChainHeads:
    """The latest head of every endpoint of one chain, and when each last moved."""

    def __init__(self, name: str, max_lag_blocks: int, ttl: float) -> None:
        self.name = name
        self.max_lag_blocks = max_lag_blocks
        self.ttl = ttl
        self._heads: dict[str, Head] = {}  # endpoint key ("provider/endpoint") -> last head
        self._moved_at: dict[str, float] = {}  # endpoint key -> when its head last changed

    def record(self, key: str, head: Head) -> None:
        previous = self._heads.get(key)
        if previous is None or previous.block != head.block:
            self._moved_at[key] = head.seen_at
        self._heads[key] = head

    def forget(self, keys_kept: Iterable[str]) -> None:
        """Drop endpoints a reload removed."""
        kept = set(keys_kept)
        for key in [k for k in self._heads if k not in kept]:
            del self._heads[key]
            self._moved_at.pop(key, None)

    def current(self, now: float) -> dict[str, Head]:
        """Heads recent enough to take part in the consensus."""
        return {k: h for k, h in self._heads.items() if now - h.seen_at <= self.ttl}

    def reference(self, now: float) -> Reference | None:
        return reference(self.current(now).values(), self.max_lag_blocks)

    def head(self, key: str) -> Head | None:
        return self._heads.get(key)

    def moved_at(self, key: str) -> float | None:
        return self._moved_at.get(key)

    def heads(self) -> Mapping[str, Head]:
        return self._heads


def still_for(moved_at: float | None, now: float) -> float:
    """Seconds the head has not moved (0 before the first report)."""
    return 0.0 if moved_at is None else max(now - moved_at, 0.0)


def hex_quantity(value: object) -> int | None:
    """A JSON-RPC quantity ("0x1b4") to an int; None when it is not one."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    return number
