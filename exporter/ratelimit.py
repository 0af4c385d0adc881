"""Provider quota headers (pure parsing) and the exporter's own client-side budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from .classify import to_number
from .config import Budget, QuotaHeaders, ResetFormat
from .model import QuotaObservation

BUDGET_SCOPE = "budget"
# Pause after a rate limit when the provider gives no reset time.
DEFAULT_RATE_LIMIT_PAUSE = 60.0
# DESIGN.md: pause until the provider's reset time plus this margin.
PAUSE_MARGIN = 10.0
_EPOCH_S_MIN = 1e9  # 2001-09-09: smaller numbers are deltas, not epochs
_EPOCH_MS_MIN = 1e12


def _header(headers: Mapping[str, str], name: str | None) -> float | None:
    if not name:
        return None
    value = headers.get(name)
    if value is None:
        return None
    # "100, 100;w=60" (IETF draft) and "60;w=60": the first number counts.
    return to_number(value.split(",")[0].split(";")[0])


def parse_reset(value: float, fmt: ResetFormat, now: float) -> float:
    """A reset header value to a unix timestamp."""
    if fmt is ResetFormat.EPOCH_MS or (fmt is ResetFormat.AUTO and value >= _EPOCH_MS_MIN):
        return value / 1000.0
    if fmt is ResetFormat.EPOCH_S or (fmt is ResetFormat.AUTO and value >= _EPOCH_S_MIN):
        return value
    return now + value


def parse_quotas(headers: Mapping[str, str], specs: tuple[QuotaHeaders, ...], now: float) -> tuple[QuotaObservation, ...]:
    """Every configured quota the response reports; specs whose headers are absent are skipped."""
    out: list[QuotaObservation] = []
    for spec in specs:
        limit = _header(headers, spec.limit)
        if limit is None:
            limit = spec.limit_value
        remaining = _header(headers, spec.remaining)
        used = _header(headers, spec.used)
        if remaining is None and used is not None and limit is not None:
            remaining = max(limit - used, 0.0)
        if remaining is None:
            continue
        reset_raw = _header(headers, spec.reset)
        if reset_raw is not None:
            reset_at: float | None = parse_reset(reset_raw, spec.reset_format, now)
        elif spec.window:
            # Fixed windows (Binance's weight per minute) reset on the window boundary.
            reset_at = math.floor(now / spec.window) * spec.window + spec.window
        else:
            reset_at = None
        out.append(QuotaObservation(spec.scope, limit, remaining, reset_at))
    return tuple(out)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """`Retry-After` as a unix timestamp: delta seconds or an HTTP date."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    number = to_number(value)
    if number is not None:
        return now + max(number, 0.0)
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def pause_until(headers: Mapping[str, str], quotas: tuple[QuotaObservation, ...], now: float) -> float:
    """When a rate-limited endpoint may be probed again: the provider's reset + margin."""
    resets = [q.reset_at for q in quotas if q.reset_at is not None and q.remaining is not None and q.remaining <= 0]
    after = retry_after(headers, now)
    candidates = [t for t in [after, *resets] if t is not None and t > now]
    until = max(candidates) if candidates else now + DEFAULT_RATE_LIMIT_PAUSE
    return until + PAUSE_MARGIN


class BudgetWindow:
    """The client-side budget of one provider: a fixed window, counted per request.

    A fixed window (not a token bucket) because provider quotas are fixed windows too
    (per minute, per day), so "remaining" and "resets at" mean the same thing as theirs.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._window_start = -math.inf
        self._used = 0

    def _roll(self, now: float) -> None:
        start = math.floor(now / self.budget.per) * self.budget.per
        if start != self._window_start:
            self._window_start = start
            self._used = 0

    def take(self, now: float) -> bool:
        self._roll(now)
        if self._used >= self.budget.requests:
            return False
        self._used += 1
        return True

    def observe(self, now: float) -> QuotaObservation:
        self._roll(now)
        return QuotaObservation(
            BUDGET_SCOPE,
            float(self.budget.requests),
            float(self.budget.requests - self._used),
            self._window_start + self.budget.per,
        )
