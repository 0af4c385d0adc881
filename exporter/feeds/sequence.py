"""Sequence checks: pure functions from the last number seen and a message's numbers to a
verdict. The venue rules (venues.py) say which numbers a message carries.

Two shapes cover the venues we watch:
- a range (`first`, `last`), contiguous when `first == previous last + 1`: Binance diff
  depth `U`/`u`, Coinbase `sequence_num` and Kraken `trade_id` (first == last), Bybit
  orderbook `u` on deltas;
- a link (`prev`, `last`), contiguous when `prev == previous last`: OKX books
  `prevSeqId`/`seqId` (an unchanged book repeats `seqId == prevSeqId`, still linked).
A `reset` (a snapshot, Bybit's `u == 1` restart) starts over without a verdict.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Seq(NamedTuple):  # a NamedTuple for speed, as venues.Item
    first: int
    last: int
    prev: int | None = None  # set for linked sequences (OKX)
    reset: bool = False


class Verdict(StrEnum):
    START = "start"  # nothing to compare with: the first message, or a reset
    OK = "ok"
    GAP = "gap"  # numbers were skipped
    OUT_OF_ORDER = "out_of_order"  # an older or repeated number


def check(last: int | None, seq: Seq) -> Verdict:
    if last is None or seq.reset:
        return Verdict.START
    if seq.prev is not None:
        if seq.prev == last:
            return Verdict.OK
        return Verdict.OUT_OF_ORDER if seq.last <= last else Verdict.GAP
    if seq.first == last + 1:
        return Verdict.OK
    if seq.first <= last:
        return Verdict.OUT_OF_ORDER
    return Verdict.GAP


def advance(last: int | None, seq: Seq, verdict: Verdict) -> int:
    """The number to compare the next message with: an out-of-order message does not move
    it back (the stream goes on from the newest number seen)."""
    if verdict is Verdict.OUT_OF_ORDER and last is not None:
        return max(last, seq.last)
    return seq.last
