"""Pure classification: status codes, payload rules, timestamps, numbers."""

from __future__ import annotations

import json

import orjson
import pytest

from exporter.classify import check_payload, classify_status, parse_timestamp, to_number
from exporter.config import TimeUnit, parse_config
from exporter.model import Outcome

NOW = 1_790_000_000.0


def endpoint(**fields: object):
    data = {"providers": [{"name": "p", "category": "explorers", "base_url": "https://example.test", "endpoints": [{"name": "e", **fields}]}]}
    return parse_config(data, env={}).providers[0].endpoints[0]


ETHERSCAN = endpoint(
    error_rules=[
        {"when": "status == '0' && contains(result, 'rate limit')", "outcome": "rate_limited"},
        {"when": "status == '0' && contains(result, 'Invalid API Key')", "outcome": "auth_error"},
        {"when": "status == '0'", "outcome": "bad_payload", "message": "result"},
    ],
    assertions=["result.ProposeGasPrice"],
    values=[{"name": "gas_price_gwei", "path": "result.ProposeGasPrice"}],
    status_outcomes={430: "rate_limited", 202: "success"},
)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, None),
        (202, None),
        (204, Outcome.BAD_PAYLOAD),
        (301, Outcome.BAD_PAYLOAD),
        (400, Outcome.CLIENT_ERROR),
        (401, Outcome.AUTH_ERROR),
        (403, Outcome.AUTH_ERROR),
        (404, Outcome.CLIENT_ERROR),
        (429, Outcome.RATE_LIMITED),
        (430, Outcome.RATE_LIMITED),
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
    ],
)
def test_classify_status(code: int, outcome: Outcome | None) -> None:
    assert classify_status(code, ETHERSCAN) is outcome


@pytest.mark.parametrize(
    ("body", "outcome", "detail"),
    [
        ({"status": "1", "result": {"ProposeGasPrice": "12.5"}}, Outcome.SUCCESS, ""),
        ({"status": "0", "message": "NOTOK", "result": "Max rate limit reached"}, Outcome.RATE_LIMITED, ""),
        ({"status": "0", "message": "NOTOK", "result": "Invalid API Key"}, Outcome.AUTH_ERROR, ""),
        ({"status": "0", "message": "NOTOK", "result": "Query Timeout"}, Outcome.BAD_PAYLOAD, "Query Timeout"),
        ({"status": "1", "result": {}}, Outcome.BAD_PAYLOAD, "assertion failed: result.ProposeGasPrice"),
        ({"status": "1", "result": {"ProposeGasPrice": "n/a"}}, Outcome.BAD_PAYLOAD, "value gas_price_gwei: no number"),
    ],
)
def test_body_rules_assertions_and_values(body: dict, outcome: Outcome, detail: str) -> None:
    verdict = check_payload(json.dumps(body).encode(), ETHERSCAN, NOW)
    assert verdict.outcome is outcome
    assert detail in verdict.detail


def test_values_are_extracted_and_scaled() -> None:
    ep = endpoint(values=[{"name": "gas_price_gwei", "path": "result", "scale": 1e-9}, {"name": "block_height", "path": "height"}])
    verdict = check_payload(b'{"result": "0x3b9aca00", "height": "0x10"}', ep, NOW)
    assert verdict.outcome is Outcome.SUCCESS
    assert verdict.values == (("gas_price_gwei", pytest.approx(1.0)), ("block_height", 16.0))


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"status": "1", "res', b"", b"\xff\xfe"])
def test_non_json_is_bad_payload(body: bytes) -> None:
    assert check_payload(body, ETHERSCAN, NOW).outcome is Outcome.BAD_PAYLOAD


@pytest.mark.parametrize(
    ("ts", "unit", "outcome"),
    [
        (NOW - 30, "s", Outcome.SUCCESS),
        ((NOW - 30) * 1000, "ms", Outcome.SUCCESS),
        ((NOW - 30) * 1000, "auto", Outcome.SUCCESS),
        (NOW - 600, "auto", Outcome.STALE),
        (hex(int(NOW - 600)), "hex_s", Outcome.STALE),
        ("2026-09-21T13:00:00Z", "iso", Outcome.STALE),
        ("yesterday", "iso", Outcome.BAD_PAYLOAD),
    ],
)
def test_freshness(ts: object, unit: str, outcome: Outcome) -> None:
    ep = endpoint(freshness={"path": "ts", "max_age": "2m", "unit": unit})
    verdict = check_payload(json.dumps({"ts": ts}).encode(), ep, NOW)
    assert verdict.outcome is outcome
    if outcome is Outcome.STALE:
        assert verdict.data_timestamp is not None and NOW - verdict.data_timestamp > 120


@pytest.mark.parametrize(
    ("value", "number"),
    [(1, 1.0), (2.5, 2.5), ("97012.5", 97012.5), ("0x1b4", 436.0), ("abc", None), (True, None), (None, None), ([1], None), ("nan", None)],
)
def test_to_number(value: object, number: float | None) -> None:
    assert to_number(value) == number


def test_parse_timestamp_hex_requires_hex() -> None:
    assert parse_timestamp("1700000000", TimeUnit.HEX_S) is None
    assert parse_timestamp("0x6553f100", TimeUnit.HEX_S) == 1700000000.0


def test_text_format_reads_a_plain_number() -> None:
    ep = endpoint(format="text", values=[{"name": "block_height", "path": "@"}])
    assert check_payload(b"871234\n", ep, NOW).values == (("block_height", 871234.0),)
    assert check_payload(b"<html>", ep, NOW).outcome is Outcome.BAD_PAYLOAD


def test_zero_is_truthy_like_jmespath_says() -> None:
    ep = endpoint(assertions=["result"])
    assert check_payload(b'{"result": 0}', ep, NOW).outcome is Outcome.SUCCESS
    assert check_payload(b'{"result": []}', ep, NOW).outcome is Outcome.BAD_PAYLOAD


def test_expression_failing_at_runtime_is_bad_payload() -> None:
    ep = endpoint(error_rules=[{"when": "contains(result, 'limit')", "outcome": "rate_limited"}])
    verdict = check_payload(b'{"result": null}', ep, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD and "expression failed" in verdict.detail


@pytest.mark.parametrize(
    ("body", "value"),
    [(b'{"v": NaN}', None), (b'{"v": 123456789012345678901234567890}', 1.2345678901234568e29), (b'{"v": "0x10"}', 16.0)],
)
def test_json_orjson_refuses_still_parses(body: bytes, value: float | None) -> None:
    ep = endpoint(values=[{"name": "v", "path": "v"}])
    verdict = check_payload(body, ep, NOW)
    if value is None:
        assert verdict.outcome is Outcome.BAD_PAYLOAD  # NaN parses, but is no number
    else:
        assert verdict.outcome is Outcome.SUCCESS and verdict.values == (("v", value),)


# ---------------------------------------------------------------- hostile bodies (issue 9)

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(DEEP, id="100000_levels"),
        pytest.param(b'{"v": NaN, "deep": ' + DEEP + b"}", id="nan_then_100000_levels"),  # orjson refuses NaN first: the standard parser's turn
        pytest.param(b"[" * 1025 + b"]" * 1025, id="just_past_the_bound"),
    ],
)
def test_deeply_nested_json_is_bad_payload(body: bytes) -> None:
    verdict = check_payload(body, ETHERSCAN, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD
    assert verdict.detail == "nested deeper than 1024 levels"


def test_nesting_within_the_bound_that_an_expression_cannot_handle_is_bad_payload() -> None:
    """1,000 levels parse (orjson's bound is 1,024), but `to_string` in the shipped error
    rules and the error message's rendering recurse once per level: past Python's
    recursion limit that is a RecursionError, which must end as a verdict too."""
    ep = endpoint(error_rules=[{"when": "status == '0' && contains(to_string(result), 'rate limit')", "outcome": "rate_limited"}])
    body = b'{"status": "0", "result": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    verdict = check_payload(body, ep, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD
    assert "nested too deeply" in verdict.detail
    message_rule = endpoint(error_rules=[{"when": "status == '0'", "outcome": "bad_payload", "message": "result"}])
    assert check_payload(body, message_rule, NOW).outcome is Outcome.BAD_PAYLOAD


@pytest.mark.parametrize(
    "value",
    ["0x" + "f" * 300, "0X" + "F" * 5000, 10**400, -(10**400), "1e999", "-1e999", "9" * 5000],
    ids=["hex_300_digits", "hex_5000_digits", "int_400_digits", "negative_int_400_digits", "exp_999", "negative_exp_999", "decimal_5000_digits"],
)
def test_huge_numbers_are_no_number_rather_than_an_error(value: object) -> None:
    assert to_number(value) is None


def test_huge_integer_payload_value_is_bad_payload() -> None:
    ep = endpoint(values=[{"name": "v", "path": "v"}])
    # NaN sends the document to the standard parser, which keeps a 400-digit integer exact.
    verdict = check_payload(b'{"x": NaN, "v": 1' + b"0" * 400 + b"}", ep, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD and "no number" in verdict.detail


def test_a_value_that_overflows_when_scaled_is_bad_payload() -> None:
    ep = endpoint(values=[{"name": "v", "path": "v", "scale": 1000}])
    verdict = check_payload(b'{"v": 1.5e308}', ep, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD and "no number" in verdict.detail


def test_digits_past_pythons_integer_limit_are_bad_payload() -> None:
    # orjson reads this as a float; with NaN beside it the standard parser refuses 5,000 digits.
    verdict = check_payload(b'{"x": NaN, "v": ' + b"7" * 5000 + b"}", endpoint(values=[{"name": "v", "path": "v"}]), NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD


def test_detail_from_a_body_with_a_lone_surrogate_is_valid_utf8() -> None:
    """orjson refuses "\\ud800"; the standard parser reads it into a str no UTF-8 encoder
    takes. A rule message carries it into the detail, and the JSON log renderer (orjson)
    and the API would raise on it."""
    body = b'{"status": "0", "message": "NOTOK", "result": "bad \\ud800 key"}'
    verdict = check_payload(body, ETHERSCAN, NOW)
    assert verdict.outcome is Outcome.BAD_PAYLOAD
    assert verdict.detail.encode("utf-8").decode() == verdict.detail
    assert "bad ? key" in verdict.detail
    orjson.dumps({"detail": verdict.detail})


def test_an_ordering_comparison_on_a_string_is_bad_payload() -> None:
    """jmespath 1.x raises a bare TypeError for `code < \\`0\\`` when code is a string
    (the shipped Binance rule); found by tests/fuzz/test_fuzz_payloads.py."""
    ep = endpoint(error_rules=[{"when": "code != null && code < `0`", "outcome": "bad_payload", "message": "msg"}])
    assert check_payload(b'{"code": -1003, "msg": "Too much request weight used"}', ep, NOW).outcome is Outcome.BAD_PAYLOAD
    verdict = check_payload(b'{"code": "x", "msg": "?"}', ep, NOW)
    assert (verdict.outcome, verdict.detail) == (Outcome.BAD_PAYLOAD, "expression failed on this body: TypeError")


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-14:00"])
def test_iso_timestamps_at_the_ends_of_the_calendar(ts: str) -> None:
    ep = endpoint(freshness={"path": "ts", "max_age": "2m", "unit": "iso"})
    assert check_payload(json.dumps({"ts": ts}).encode(), ep, NOW).outcome in (Outcome.BAD_PAYLOAD, Outcome.STALE, Outcome.SUCCESS)
