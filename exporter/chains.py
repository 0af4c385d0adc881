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
from enum import StrEnum
from typing import Any, Protocol

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


class ChainProtocol(StrEnum):
    """How a node is asked for its head: one probe module branch per protocol."""

    EVM = "evm"  # Ethereum JSON-RPC: eth_chainId, eth_getBlockByNumber, eth_syncing
    SOLANA = "solana"  # Solana JSON-RPC: getGenesisHash, getSlot, getHealth, getBlockTime
    ESPLORA = "esplora"  # Esplora REST (mempool.space, Blockstream): /blocks, /block-height/0


class HeadStatus(StrEnum):
    """An endpoint's place in its chain's consensus (GET /api/chains)."""

    OK = "ok"
    LAGGING = "lagging"
    STUCK = "stuck"
    SYNCING = "syncing"
    WRONG_CHAIN = "wrong_chain"
    AHEAD = "ahead"  # beyond the allowed lag ahead of the reference: a rogue node, or the reference lags
    UNKNOWN = "unknown"  # no head reported yet, or too long ago


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """The `chain:` block of a chain_head endpoint, defaults applied (config.py)."""

    name: str
    protocol: ChainProtocol
    id: str
    block_time: float
    max_lag_blocks: int
    max_lag: float
    max_stillness: float


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
    """The second-highest head among right-chain reports of nodes not syncing (the
    highest when only two report, the only one when one does); None when nobody on the
    right chain reported."""
    # A node that says it is syncing serves an old view by its own account: no vote.
    candidates = sorted((h for h in heads if h.right_chain and not h.syncing), key=lambda h: h.block, reverse=True)
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


# ---------------------------------------------------------------- the owner of every chain


@dataclass(frozen=True, slots=True)
class Member:
    """One chain_head endpoint as the config declares it."""

    provider: str
    endpoint: str
    spec: ChainSpec
    interval: float

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.endpoint}"


@dataclass(frozen=True, slots=True)
class View:
    """One endpoint against its chain's consensus, now."""

    member: Member
    head: Head | None
    lag: Lag | None  # None without a head, a reference, or on another chain
    still_for: float
    status: HeadStatus
    moved_at: float | None = None  # when the head last changed (wall clock)


def judge(member: Member, head: Head | None, ref: Reference | None, moved_at: float | None, now: float, ttl: float) -> View:
    """Where an endpoint stands: the pure rule behind both the probe's outcome and the API."""
    spec = member.spec
    still = still_for(moved_at, now)
    if head is None or now - head.seen_at > ttl:
        return View(member, head, None, still, HeadStatus.UNKNOWN, moved_at)
    if not head.right_chain:
        return View(member, head, None, still, HeadStatus.WRONG_CHAIN, moved_at)
    lag_ = lag(head, ref) if ref is not None else None
    if head.syncing:
        status = HeadStatus.SYNCING
    elif lag_ is not None and is_lagging(lag_, spec.max_lag_blocks, spec.max_lag):
        status = HeadStatus.LAGGING
    elif still > spec.max_stillness:
        status = HeadStatus.STUCK
    elif lag_ is not None and -lag_.blocks > spec.max_lag_blocks:
        status = HeadStatus.AHEAD
    else:
        status = HeadStatus.OK
    return View(member, head, lag_, still, status, moved_at)


class Chains:
    """Every chain's heads by chain name, and which endpoint belongs to which chain.

    The one owner (built by the composition root, reconciled on every reload): chain_head
    probes record into it and read their verdict from it; /metrics and /api/chains read
    it. Observations of endpoints that stay survive a reload."""

    def __init__(self) -> None:
        self._chains: dict[str, ChainHeads] = {}
        self._members: dict[str, Member] = {}  # "provider/endpoint" -> member

    def apply(self, members: Iterable[Member]) -> None:
        grouped: dict[str, list[Member]] = {}
        for m in members:
            grouped.setdefault(m.spec.name, []).append(m)
        chains: dict[str, ChainHeads] = {}
        for name, group in grouped.items():
            ttl = OBSERVATION_TTL_ROUNDS * max(m.interval for m in group)
            # "Agreeing" uses the chain's default bound: endpoints may each be stricter or looser.
            bound = default_max_lag_blocks(group[0].spec.block_time)
            heads = self._chains.get(name) or ChainHeads(name, bound, ttl)
            heads.max_lag_blocks, heads.ttl = bound, ttl
            heads.forget(m.key for m in group)
            chains[name] = heads
        self._chains = chains
        self._members = {m.key: m for group in grouped.values() for m in group}

    def record(self, provider: str, endpoint: str, head: Head) -> View | None:
        """Record a head, recompute the consensus, and judge the endpoint (None when the
        endpoint is not, or no longer, configured)."""
        member = self._members.get(f"{provider}/{endpoint}")
        if member is None:
            return None
        chain = self._chains[member.spec.name]
        chain.record(member.key, head)
        return self.view(member, head.seen_at)

    def view(self, member: Member, now: float) -> View:
        chain = self._chains[member.spec.name]
        return judge(member, chain.head(member.key), chain.reference(now), chain.moved_at(member.key), now, chain.ttl)

    def names(self) -> list[str]:
        return sorted(self._chains)

    def reference(self, chain: str, now: float) -> Reference | None:
        heads = self._chains.get(chain)
        return heads.reference(now) if heads is not None else None

    def members(self, chain: str | None = None) -> list[Member]:
        return [m for m in self._members.values() if chain is None or m.spec.name == chain]

    def views(self, now: float) -> list[View]:
        return [self.view(m, now) for m in self._members.values()]


# Best endpoint: eRPC's selection-policy penalty with its BALANCED preset's weights
# (erpc/erpc, the policy runtime's stdlib.js: errorRate 8, respLatency 4,
# throttledRate 3, blockHeadLag 2); lower is better. docs/chains.md explains the inputs.
WEIGHT_ERROR_RATE = 8.0
WEIGHT_LATENCY = 4.0
WEIGHT_THROTTLED_RATE = 3.0
WEIGHT_HEAD_LAG = 2.0


def penalty(error_rate: float, throttled_rate: float, latency: float, lag_blocks: int) -> float:
    """Rates in 0..1, latency in seconds, lag in blocks behind the reference (ahead is 0)."""
    return WEIGHT_ERROR_RATE * error_rate + WEIGHT_LATENCY * latency + WEIGHT_THROTTLED_RATE * throttled_rate + WEIGHT_HEAD_LAG * max(lag_blocks, 0)


class _Configured(Protocol):
    """What chain_members reads of a Config (duck-typed: config.py imports this module)."""

    @property
    def providers(self) -> Iterable[Any]: ...


def chain_members(config: _Configured) -> list[Member]:
    """Every chain_head endpoint of a config, as a member of its chain."""
    return [Member(p.name, ep.name, ep.chain, ep.interval) for p in config.providers for ep in p.endpoints if ep.chain is not None]
