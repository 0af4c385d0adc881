"""Circuit breaker transitions and key rotation."""

from __future__ import annotations

from exporter.circuit import CircuitBreaker
from exporter.config import ApiKey, CircuitBreakerSpec
from exporter.keys import KeyRing
from exporter.model import CircuitState, Outcome


def test_breaker_opens_after_threshold_and_recovers_through_half_open() -> None:
    b = CircuitBreaker(CircuitBreakerSpec(failure_threshold=3, reset_timeout=60))
    for t in range(3):
        assert b.allow(t)
        b.record(Outcome.SERVER_ERROR, t)
    assert b.state is CircuitState.OPEN
    assert not b.allow(30)
    assert b.allow(63) and b.state is CircuitState.HALF_OPEN
    assert not b.allow(63.5)  # one trial at a time
    b.record(Outcome.TIMEOUT, 64)
    assert b.state is CircuitState.OPEN and not b.allow(100)
    assert b.allow(125)
    b.record(Outcome.SUCCESS, 125)
    assert b.state is CircuitState.CLOSED and b.allow(126)


def test_breaker_ignores_non_transport_failures() -> None:
    b = CircuitBreaker(CircuitBreakerSpec(failure_threshold=2, reset_timeout=60))
    for outcome in (Outcome.SERVER_ERROR, Outcome.AUTH_ERROR, Outcome.SERVER_ERROR, Outcome.BUDGET_EXHAUSTED):
        b.record(outcome, 0)
    # auth_error is an answer: it reset the run of failures.
    assert b.state is CircuitState.CLOSED


def test_keyring_rotates_and_comes_back() -> None:
    k1, k2 = ApiKey("K_1", "v1"), ApiKey("K_2", "v2")
    ring = KeyRing(("K_1", "K_2"), (k1, k2))
    assert ring.current() == k1
    assert ring.reject(k1) == k2
    assert ring.current() == k2 and ring.validity() == {"K_1": False, "K_2": True}
    assert ring.reject(k2) is None  # no valid key left
    assert ring.current() in (k1, k2)  # keeps trying so a re-enabled key is noticed
    ring.accept(k1)
    assert ring.current() == k1


def test_keyring_empty() -> None:
    assert KeyRing((), ()).current() is None
