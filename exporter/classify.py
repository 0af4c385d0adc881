"""Pure functions that turn an HTTP answer into an outcome: the one place a status code
and a body are classified. No I/O, no clock reads."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jmespath.exceptions

from . import limits, safejson
from .config import BodyFormat, Endpoint, Expression, Freshness, TimeUnit
from .model import Outcome

# Providers that ban or meter with codes other than 429 are mapped per endpoint in
# providers.yaml (status_outcomes); these are the codes every HTTP API agrees on.
_RATE_LIMIT_CODES = frozenset({429})
_AUTH_CODES = frozenset({401, 403})
_DETAIL_MAX = limits.DETAIL_CHARS
# Epoch seconds stay below this until the year 5138; anything larger is milliseconds.
_MS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True)
class PayloadVerdict:
    outcome: Outcome
    detail: str = ""
    data_timestamp: float | None = None
    values: tuple[tuple[str, float], ...] = ()


def classify_response(status: int, body: bytes, endpoint: Endpoint, now: float) -> PayloadVerdict:
    """An HTTP answer to its verdict: the status code decides what it can; a 2xx (or a
    code mapped to success) has its body checked. A non-2xx whose body matches a
    rate-limit or auth rule takes that outcome (Bybit answers 403 "access too frequent";
    CoinMarketCap 401 with error_code 1008)."""
    decided = classify_status(status, endpoint)
    if decided is None:
        return check_payload(body, endpoint, now)
    outcome = decided
    if endpoint.error_rules and decided in (Outcome.CLIENT_ERROR, Outcome.AUTH_ERROR, Outcome.SERVER_ERROR):
        verdict = check_payload(body, endpoint, now)
        if verdict.outcome in (Outcome.RATE_LIMITED, Outcome.AUTH_ERROR):
            outcome = verdict.outcome
    return PayloadVerdict(outcome, f"HTTP {status}")


def classify_status(code: int, endpoint: Endpoint) -> Outcome | None:
    """The outcome a status code decides on its own, or None when the body must be read."""
    if code in endpoint.status_outcomes:
        mapped = endpoint.status_outcomes[code]
        return None if mapped is Outcome.SUCCESS else mapped
    if code in endpoint.expect_status:
        return None
    if code in _RATE_LIMIT_CODES:
        return Outcome.RATE_LIMITED
    if code in _AUTH_CODES:
        return Outcome.AUTH_ERROR
    if code >= 500:
        return Outcome.SERVER_ERROR
    if code >= 400:
        return Outcome.CLIENT_ERROR
    # An unexpected 1xx-3xx: the API answered, but not what this endpoint promises.
    return Outcome.BAD_PAYLOAD


def to_number(value: Any) -> float | None:
    """A JSON number, a numeric string ("97012.5") or a JSON-RPC hex quantity ("0x1b4");
    None for anything else, including numbers no float can hold (a 400-digit integer,
    "0x" and 300 hex digits: OverflowError, not a value)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            number = float(int(text, 16)) if text[:2].lower() == "0x" else float(text)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def parse_timestamp(value: Any, unit: TimeUnit) -> float | None:
    """A payload timestamp to unix seconds, or None when it is not one."""
    if unit is TimeUnit.ISO:
        if not isinstance(value, str):
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.timestamp()
        except (ValueError, OverflowError):  # "0001-01-01T00:00:00+14:00" is before year 1 in UTC
            return None
    if unit is TimeUnit.HEX_S and not (isinstance(value, str) and value[:2].lower() == "0x"):
        return None
    number = to_number(value)
    if number is None or number <= 0:
        return None
    if unit is TimeUnit.MS or (unit is TimeUnit.AUTO and number > _MS_THRESHOLD):
        return number / 1000.0
    return number


def short(text: str) -> str:
    """A detail safe in size and encoding for logs and the API (secrets are redacted by
    the caller). Text from a payload can be a megabyte long, and can hold lone
    surrogates ("\\ud800" in a body the standard parser read), which no UTF-8 encoder
    takes: the JSON log renderer would raise on them; they become "?"."""
    text = " ".join(str(text)[: _DETAIL_MAX * 8].split())
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def check_payload(body: bytes, endpoint: Endpoint, now: float) -> PayloadVerdict:
    """Body rules, assertions, freshness and values, in that order.

    A body error rule decides first: Etherscan's HTTP-200 "Max rate limit reached"
    is `rate_limited`, not a failed assertion. An expression that fails on this body
    (`length(null)`) makes it a bad payload, never an exception.
    """
    try:
        return _check(body, endpoint, now)
    except jmespath.exceptions.JMESPathError as e:
        return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"expression failed on this body: {type(e).__name__}"))
    except _ExpressionFailed as e:
        return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"expression failed on this body: {e}"))
    except RecursionError:
        # The parser admits PAYLOAD_JSON_DEPTH levels, but what walks the parsed value
        # recursively (`to_string` in the registry's error rules, the rule message's
        # rendering) reaches Python's recursion limit a little earlier. Bounding the depth
        # lower would cost a walk of every payload; a body this deep is bad either way.
        return PayloadVerdict(Outcome.BAD_PAYLOAD, "nested too deeply to check")


def _check(body: bytes, endpoint: Endpoint, now: float) -> PayloadVerdict:
    if endpoint.format is BodyFormat.TEXT:
        return _check_text(body, endpoint)
    try:
        data = safejson.loads(body)
    except safejson.JsonError as e:
        return PayloadVerdict(Outcome.BAD_PAYLOAD, "empty body" if not body.strip() else short(str(e)))
    for rule in endpoint.error_rules:
        if _truthy(_search(rule.when, data)):
            if rule.outcome is Outcome.SUCCESS:
                break
            message = _message(_search(rule.message, data)) if rule.message else ""
            return PayloadVerdict(rule.outcome, short(f"body matched error rule '{rule.when.source}'" + (f": {message}" if message else "")))
    for assertion in endpoint.assertions:
        if not _truthy(_search(assertion, data)):
            return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"assertion failed: {assertion.source}"))
    values: list[tuple[str, float]] = []
    for spec in endpoint.values:
        scaled = _scaled(to_number(_search(spec.path, data)), spec.scale)
        if scaled is None:
            return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"value {spec.name}: no number at {spec.path.source}"))
        values.append((spec.name, scaled))
    data_ts = None
    if endpoint.freshness is not None:
        data_ts = parse_timestamp(_search(endpoint.freshness.path, data), endpoint.freshness.unit)
        if data_ts is None:
            return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"freshness: no timestamp at {endpoint.freshness.path.source}"), None, tuple(values))
        if is_stale(data_ts, endpoint.freshness, now):
            age = now - data_ts
            return PayloadVerdict(Outcome.STALE, f"data is {age:.0f}s old (max {endpoint.freshness.max_age:g}s)", data_ts, tuple(values))
    return PayloadVerdict(Outcome.SUCCESS, "", data_ts, tuple(values))


def is_stale(data_ts: float, freshness: Freshness, now: float) -> bool:
    return now - data_ts > freshness.max_age


def _check_text(body: bytes, endpoint: Endpoint) -> PayloadVerdict:
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return PayloadVerdict(Outcome.BAD_PAYLOAD, "body is not UTF-8 text")
    if not text:
        return PayloadVerdict(Outcome.BAD_PAYLOAD, "empty body")
    values: list[tuple[str, float]] = []
    for spec in endpoint.values:
        # A plain-text body (mempool.space's /blocks/tip/height) is the value itself.
        scaled = _scaled(to_number(text), spec.scale)
        if scaled is None:
            return PayloadVerdict(Outcome.BAD_PAYLOAD, short(f"value {spec.name}: body is not a number"))
        values.append((spec.name, scaled))
    return PayloadVerdict(Outcome.SUCCESS, "", None, tuple(values))


def _search(expression: Expression, data: Any) -> Any:
    """The expression's result on this body. jmespath 1.x raises a plain TypeError on some
    shapes (an ordering comparison of a string with a number, as in the Binance rule
    `code < 0` when `code` is a string): that is the expression failing on this body
    too, not an error of ours."""
    try:
        return expression.search(data)
    except jmespath.exceptions.JMESPathError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise _ExpressionFailed(type(e).__name__) from None


class _ExpressionFailed(Exception):
    """An expression raised something jmespath does not wrap; the text is its type name."""


def _scaled(number: float | None, scale: float) -> float | None:
    """The value times its scale, or None when there is none or the product overflows
    (1.5e308 x 1000 is no gauge value either)."""
    if number is None:
        return None
    scaled = number * scale
    return scaled if math.isfinite(scaled) else None


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: false, null, "", [], {} are false; 0 is true. (`0 in (False,)`
    # is True in Python, hence the identity checks.)
    if value is None or value is False:
        return False
    return not (isinstance(value, (str, list, dict)) and len(value) == 0)


def _message(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))[:_DETAIL_MAX]
    return "" if value is None else str(value)
