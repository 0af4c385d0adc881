"""Quota headers, Retry-After, the pause after a rate limit, the client-side budget."""

from __future__ import annotations

import pytest

from exporter.config import Budget, QuotaHeaders, ResetFormat
from exporter.model import QuotaObservation
from exporter.ratelimit import PAUSE_MARGIN, BudgetWindow, parse_quotas, parse_reset, pause_until, retry_after

NOW = 1_790_000_030.0
STANDARD = QuotaHeaders("minute", limit="X-RateLimit-Limit", remaining="X-RateLimit-Remaining", reset="X-RateLimit-Reset")
BINANCE = QuotaHeaders("weight_1m", used="X-MBX-USED-WEIGHT-1M", limit_value=6000, window=60)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "30"}, QuotaObservation("minute", 100, 7, NOW + 30)),
        ({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(NOW + 45)}, QuotaObservation("minute", 100, 7, NOW + 45)),
        (
            {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((NOW + 5) * 1000))},
            QuotaObservation("minute", 100, 0, NOW + 5),
        ),
        ({"X-RateLimit-Limit": "100, 100;w=60", "X-RateLimit-Remaining": "99"}, QuotaObservation("minute", 100, 99, None)),
        ({}, None),
    ],
)
def test_standard_headers(headers: dict[str, str], expected: QuotaObservation | None) -> None:
    assert parse_quotas(headers, (STANDARD,), NOW) == ((expected,) if expected else ())


def test_binance_used_weight_against_configured_limit() -> None:
    (q,) = parse_quotas({"X-MBX-USED-WEIGHT-1M": "1234"}, (BINANCE,), NOW)
    # The minute window resets on the minute boundary after NOW.
    assert q == QuotaObservation("weight_1m", 6000, 4766, 1_790_000_040.0)


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (30, ResetFormat.DELTA_S, NOW + 30),
        (NOW, ResetFormat.EPOCH_S, NOW),
        (NOW * 1000, ResetFormat.EPOCH_MS, NOW),
        (2_000_000_000, ResetFormat.DELTA_S, NOW + 2e9),
    ],
)
def test_parse_reset(value: float, fmt: ResetFormat, expected: float) -> None:
    assert parse_reset(value, fmt, NOW) == pytest.approx(expected)


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after({"Retry-After": "20"}, NOW) == NOW + 20
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, NOW) == 1792567680.0
    assert retry_after({"Retry-After": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None


def test_pause_until_reset_plus_margin() -> None:
    assert pause_until({"Retry-After": "20"}, (), NOW) == NOW + 20 + PAUSE_MARGIN
    exhausted = (QuotaObservation("minute", 100, 0, NOW + 50),)
    assert pause_until({"Retry-After": "20"}, exhausted, NOW) == NOW + 50 + PAUSE_MARGIN
    assert pause_until({}, (), NOW) == NOW + 60 + PAUSE_MARGIN


def test_budget_fixed_window() -> None:
    budget = BudgetWindow(Budget(requests=2, per=60))
    assert budget.take(NOW) and budget.take(NOW + 1)
    assert not budget.take(NOW + 2)
    assert budget.observe(NOW + 2) == QuotaObservation("budget", 2, 0, 1_790_000_040.0)
    assert budget.take(1_790_000_040.0)  # a new window
    assert budget.observe(1_790_000_041.0).remaining == 1
