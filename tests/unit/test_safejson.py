"""safejson: JSON from outside parsed within a nesting bound, raising JsonError only."""

from __future__ import annotations

import contextlib
import math
import random

import pytest

from exporter import limits, safejson
from exporter.safejson import JsonError


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        ('{"a": 1}', {"a": 1}),  # str too (API bodies arrive decoded)
        (b"[" * limits.PAYLOAD_JSON_DEPTH + b"]" * limits.PAYLOAD_JSON_DEPTH, None),  # the bound itself is allowed
        (b'{"big": 123456789012345678901234567890123}', None),  # beyond 64 bits
    ],
    ids=["object", "str", "at_the_bound", "beyond_64_bits"],
)
def test_accepted(raw: bytes | str, value: object) -> None:
    parsed = safejson.loads(raw)
    if value is not None:
        assert parsed == value


def test_what_orjson_refuses_but_apis_send_still_parses() -> None:
    parsed = safejson.loads(b'{"v": NaN, "w": -Infinity}')
    assert math.isnan(parsed["v"]) and parsed["w"] == -math.inf


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 1024 levels"),  # orjson's own bound
        (b"[NaN, " + b"[" * 100_000 + b"]" * 100_000 + b"]", "nested deeper than 1024 levels"),  # the fallback's RecursionError
        (b"[" * 1025 + b"]" * 1025, "nested deeper than 1024 levels"),
        (b'{"v": "caf\xe9"}', "not UTF-8"),  # the fallback's UnicodeDecodeError
        (b'{"v": NaN, "n": ' + b"7" * 5000 + b"}", "not usable JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
        (b"", "not JSON (Expecting value at byte 0)"),
        (b"<html>", "not JSON (Expecting value at byte 0)"),
    ],
    ids=["deep", "deep_after_nan", "one_past_the_bound", "not_utf8", "5000_digits", "empty", "html"],
)
def test_refused_with_a_short_reason(raw: bytes, message: str) -> None:
    with pytest.raises(JsonError) as err:
        safejson.loads(raw)
    assert str(err.value) == message


def test_a_lower_bound_is_enforced_after_parsing() -> None:
    assert safejson.loads(b"[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(JsonError, match="nested deeper than 2 levels"):
        safejson.loads(b"[[[1]]]", max_depth=2)
    with pytest.raises(JsonError, match="nested deeper than 2 levels"):
        safejson.loads(b'{"a": {"b": {}}}', max_depth=2)


def test_depth_counts_iteratively_and_stops_past_the_bound() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(50_000):  # far past the recursion limit: no recursion here
        child: list[object] = []
        node.append(child)
        node = child
    assert safejson.depth(deep, 10) == 11
    assert safejson.depth({"a": [1, {"b": 2}]}, 10) == 3
    assert safejson.depth(7, 10) == 0


def test_random_bytes_raise_json_error_or_parse() -> None:
    rng = random.Random(9)
    alphabet = b'[]{}",:0123456789.eE+-tfnulrsaNIy \\\x00\xff\xc3'
    for _ in range(3000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        with contextlib.suppress(JsonError):  # the only exception allowed out
            safejson.loads(raw)
