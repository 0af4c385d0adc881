"""A circuit breaker per provider: stop spending requests on a provider that is down."""

from __future__ import annotations

from .config import CircuitBreakerSpec
from .model import CircuitState, Outcome

# Failures that say the provider is down, not that our request or key is wrong.
TRIPPING = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION_ERROR, Outcome.SERVER_ERROR})


class CircuitBreaker:
    """closed -> open after `failure_threshold` failed probes in a row; open -> half_open
    after `reset_timeout`; one probe in half_open closes or reopens it.

    Times are monotonic seconds passed in by the caller, so tests advance a clock."""

    def __init__(self, spec: CircuitBreakerSpec) -> None:
        self.spec = spec
        self.state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    def allow(self, now: float) -> bool:
        if self.state is CircuitState.OPEN and now - self._opened_at >= self.spec.reset_timeout:
            self.state = CircuitState.HALF_OPEN
            self._trial_running = False
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record(self, outcome: Outcome, now: float) -> None:
        if outcome.skipped:
            return
        if outcome in TRIPPING:
            self._failures += 1
            if self.state is CircuitState.HALF_OPEN or self._failures >= self.spec.failure_threshold:
                self.state = CircuitState.OPEN
                self._opened_at = now
        else:
            # Any answer from the provider (even a 4xx) proves it is reachable.
            self._failures = 0
            self.state = CircuitState.CLOSED
        self._trial_running = False
