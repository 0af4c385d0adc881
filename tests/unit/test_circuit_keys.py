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


def test_a_rejected_key_is_tried_again_after_its_rest() -> None:
    k1, k2 = ApiKey("K_1", "v1"), ApiKey("K_2", "v2")
    ring = KeyRing(("K_1", "K_2"), (k1, k2), retest_after=600.0)
    assert ring.reject(k1, now=100.0) == k2
    assert ring.current(now=699.0) == k2  # still resting
    assert ring.current(now=700.0) == k1  # its trial, once...
    assert ring.current(now=701.0) == k2  # ...then the next trial is a rest away
    ring.accept(k1)  # the trial succeeded: valid again
    assert ring.validity() == {"K_1": True, "K_2": True}
    assert ring.current(now=5000.0) == k2  # no flapping back: the key in use stays


def test_a_trial_that_fails_rests_again() -> None:
    k1, k2 = ApiKey("K_1", "v1"), ApiKey("K_2", "v2")
    ring = KeyRing(("K_1", "K_2"), (k1, k2), retest_after=600.0)
    ring.reject(k1, now=0.0)
    assert ring.current(now=600.0) == k1
    assert ring.reject(k1, now=600.5) == k2
    assert ring.current(now=1200.0) == k2 and ring.current(now=1200.5) == k1


def test_key_test_results_are_recorded() -> None:
    k1 = ApiKey("K_1", "v1")
    ring = KeyRing(("K_1", "K_UNSET"), (k1,), retest_after=60.0)
    ring.record("K_1", False, now=10.0)
    assert ring.validity() == {"K_1": False, "K_UNSET": False}
    ring.record("K_1", True)
    ring.record("K_UNSET", True)  # an unset env var cannot become a usable key
    assert ring.validity() == {"K_1": True, "K_UNSET": False}
