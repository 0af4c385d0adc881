"""The simulator's venue shapes are what the venue rules read, and its fault control
refuses bad input with the field named."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from exporter.feeds.venues import RULES, Kind, Venue
from exporter.simulator.feeds import SYMBOLS, FeedFault, _Conn, _heartbeat, _messages, _reply


class _NoWs:
    closed = False


def conn(venue: Venue) -> _Conn:
    return _Conn(venue, _NoWs(), 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("venue", list(Venue))
def test_every_simulated_message_is_data_for_its_venue_rule(venue: Venue) -> None:
    c = conn(venue)
    for symbol in SYMBOLS[venue]:
        for text in _messages(c, FeedFault(), symbol, 60_000.5, 1_700_000_000_000):
            parsed = RULES[venue](json.loads(text))
            assert parsed.kind is Kind.DATA, (venue, parsed.detail)
            assert any(item.event_time == 1_700_000_000.0 for item in parsed.items)
    beat = _heartbeat(c)
    if beat is not None:
        assert RULES[venue](json.loads(beat)).kind is Kind.HEARTBEAT


@pytest.mark.parametrize(
    ("venue", "sent", "kind"),
    [
        (Venue.OKX, "ping", Kind.HEARTBEAT),
        (Venue.BYBIT, '{"op": "ping"}', Kind.HEARTBEAT),
        (Venue.BITSTAMP, '{"event": "bts:heartbeat"}', Kind.HEARTBEAT),
        (Venue.BINANCE, '{"method": "SUBSCRIBE", "params": [], "id": 1}', Kind.CONTROL),
        (Venue.KRAKEN, '{"method": "subscribe", "params": {"channel": "trade"}}', Kind.CONTROL),
    ],
)
def test_replies_to_keepalives_and_subscriptions(venue: Venue, sent: str, kind: Kind) -> None:
    reply = _reply(venue, sent)
    assert reply is not None
    msg: Any = reply if reply == "pong" else json.loads(reply)
    assert RULES[venue](msg).kind is kind


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "body: must be a JSON object"),
        ({"venue": "ftx"}, "venue: must be one of"),
        ({"silence": "yes"}, "silence: must be true or false"),
        ({"gaps": -1}, "gaps: must be an integer from 0 to 10000"),
        ({"lag_seconds": 0}, "lag_seconds: must be a number above 0"),
        ({"colour": 1}, "colour: unknown field"),
    ],
)
def test_fault_control_refuses_bad_input(body: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        FeedFault.parse(body)


def test_a_gap_skips_exactly_one_number_per_injected_gap() -> None:
    c = conn(Venue.BYBIT)
    fault = FeedFault(gaps=2)
    us = []
    for _ in range(5):
        text = list(_messages(c, fault, "BTCUSDT", 1.0, 0))[1]
        us.append(json.loads(text)["data"]["u"])
    assert [b - a for a, b in itertools.pairwise([1000, *us])] == [2, 2, 1, 1, 1] and fault.gaps == 0  # from the stream's start, 1000
