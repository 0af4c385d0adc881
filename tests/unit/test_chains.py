"""Chain-head consensus: the reference is the second-highest head on the right chain."""

from __future__ import annotations

import pytest

from exporter.chains import (
    ChainHeads,
    ChainProtocol,
    Chains,
    ChainSpec,
    Head,
    HeadStatus,
    Lag,
    Member,
    Reference,
    default_max_lag_blocks,
    default_max_lag_seconds,
    default_max_stillness,
    hex_quantity,
    is_lagging,
    judge,
    lag,
    penalty,
    reference,
    still_for,
)

T = 1_800_000_000.0


def h(block: int, ts: float | None = None, right: bool = True, seen: float = T) -> Head:
    return Head(block, ts if ts is not None else T - (20_000_000 - block) * 12, seen, right_chain=right)


def test_second_highest_is_the_reference_so_a_rogue_node_far_ahead_moves_nothing() -> None:
    heads = [h(20_000_000), h(20_000_000), h(19_999_999), h(50_000_000)]  # the last one: rogue
    ref = reference(heads, max_lag_blocks=5)
    assert ref is not None and ref.block == 20_000_000
    assert [lag(x, ref).blocks for x in heads] == [0, 0, 1, -30_000_000]
    assert ref.reporters == 4 and ref.agreeing == 3


def test_with_two_reporters_the_highest_is_the_reference() -> None:
    ref = reference([h(100), h(80)], max_lag_blocks=5)
    assert ref == Reference(100, h(100).timestamp, 2, 1)
    assert lag(h(80), ref) == Lag(20, 20 * 12.0)


def test_wrong_chain_nodes_take_no_part() -> None:
    heads = [h(100), h(99), h(98), h(30_000_000, right=False), h(30_000_001, right=False)]
    ref = reference(heads, max_lag_blocks=5)
    assert ref is not None and (ref.block, ref.reporters) == (99, 3)
    assert reference([h(5, right=False)], 5) is None


@pytest.mark.parametrize(
    ("blocks", "seconds", "lagging"),
    [(5, 60.0, False), (6, 0.0, True), (0, 61.0, True), (-3, None, False), (5, None, False)],
)
def test_lagging_is_behind_beyond_either_bound(blocks: int, seconds: float | None, lagging: bool) -> None:
    assert is_lagging(Lag(blocks, seconds), max_blocks=5, max_seconds=60.0) is lagging


@pytest.mark.parametrize(
    ("block_time", "blocks", "seconds", "stillness"),
    [
        (12.0, 5, 60.0, 120.0),  # Ethereum
        (0.25, 240, 60.0, 60.0),  # Arbitrum
        (0.4, 150, 60.0, 60.0),  # Solana slots
        (2.0, 30, 60.0, 60.0),  # Polygon PoS
        (600.0, 2, 1800.0, 6000.0),  # Bitcoin
    ],
)
def test_chain_aware_defaults(block_time: float, blocks: int, seconds: float, stillness: float) -> None:
    assert default_max_lag_blocks(block_time) == blocks
    assert default_max_lag_seconds(block_time) == seconds
    assert default_max_stillness(block_time) == stillness


def test_heads_remember_when_each_moved_and_age_out_of_the_consensus() -> None:
    chain = ChainHeads("ethereum", max_lag_blocks=5, ttl=60.0)
    chain.record("a/head", h(100, seen=T))
    chain.record("b/head", h(100, seen=T))
    chain.record("a/head", h(100, seen=T + 30))  # the same head again: did not move
    assert chain.moved_at("a/head") == T and still_for(chain.moved_at("a/head"), T + 30) == 30.0
    chain.record("a/head", h(101, seen=T + 40))
    assert chain.moved_at("a/head") == T + 40
    # b stopped answering: past the TTL its old head no longer counts.
    assert set(chain.current(T + 70)) == {"a/head"}
    ref = chain.reference(T + 70)
    assert ref is not None and ref.block == 101
    chain.forget(["b/head"])
    assert set(chain.heads()) == {"b/head"} and chain.moved_at("a/head") is None


@pytest.mark.parametrize(("raw", "value"), [("0x1b4", 436), ("0x0", 0), ("0X10", 16), ("1b4", None), ("0xzz", None), (436, None), (None, None)])
def test_hex_quantity(raw: object, value: int | None) -> None:
    assert hex_quantity(raw) == value


def test_a_syncing_node_takes_no_part_in_the_consensus() -> None:
    syncing = Head(200, None, T, syncing=True)
    ref = reference([h(100), h(99), h(98), syncing], max_lag_blocks=5)
    assert ref is not None and (ref.block, ref.reporters) == (99, 3)


SPEC = ChainSpec("ethereum", ChainProtocol.EVM, "1", 12.0, 5, 60.0, 120.0)
MEMBER = Member("p", "e", SPEC, 60.0)


@pytest.mark.parametrize(
    ("head", "moved_at", "now", "status"),
    [
        (None, None, T, HeadStatus.UNKNOWN),
        (h(100, seen=T - 181), T - 181, T, HeadStatus.UNKNOWN),  # older than the TTL (3 rounds)
        (h(100, right=False), T, T, HeadStatus.WRONG_CHAIN),
        (Head(100, None, T, syncing=True), T, T, HeadStatus.SYNCING),
        (h(94), T, T, HeadStatus.LAGGING),  # 6 blocks behind the reference 100
        (h(95), T, T, HeadStatus.OK),
        (h(100), T - 121, T, HeadStatus.STUCK),
        (h(106), T, T, HeadStatus.AHEAD),
    ],
)
def test_judge(head: Head | None, moved_at: float | None, now: float, status: HeadStatus) -> None:
    ref = Reference(100, h(100).timestamp, 3, 3)
    assert judge(MEMBER, head, ref, moved_at, now, ttl=180.0).status is status


def test_penalty_uses_erpc_balanced_weights() -> None:
    assert penalty(error_rate=0.5, throttled_rate=0.0, latency=0.25, lag_blocks=3) == 8 * 0.5 + 4 * 0.25 + 2 * 3
    assert penalty(0.0, 1.0, 0.0, -5) == 3.0  # ahead is no penalty


def test_the_owner_keeps_heads_across_a_reload_and_drops_removed_endpoints() -> None:
    chains = Chains()
    chains.apply([MEMBER, Member("q", "e", SPEC, 60.0)])
    chains.record("p", "e", h(100))
    chains.record("q", "e", h(99))
    assert chains.record("gone", "e", h(1)) is None
    chains.apply([MEMBER])
    assert [v.member.provider for v in chains.views(T)] == ["p"]
    assert chains.reference("ethereum", T) == Reference(100, h(100).timestamp, 1, 1)
