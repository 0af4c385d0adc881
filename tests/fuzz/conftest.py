"""The fuzz suite's settings: a fixed seed and a fixed budget, so CI runs the same cases
every time and a failure reproduces with `pytest tests/fuzz -k <name>`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

F = TypeVar("F", bound=Callable[..., Any])
# One draw per case: the mutation itself runs on random.Random(seed), which costs far
# less than drawing every choice from Hypothesis (the budget is cases, not shrinking).
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def fuzz_settings(max_examples: int) -> Callable[[F], F]:
    return settings(
        max_examples=max_examples,
        derandomize=True,  # the seed is the test's name: same cases on every run
        deadline=None,  # a shared, noisy machine: time is measured in bench/, not here
        database=None,  # nothing remembered between runs: the run is the budget
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
        print_blob=True,
    )
