"""The demo spends quotas faster than production; the sizes it gives them keep the
share production would use (exporter/demo.py)."""

from __future__ import annotations

import pytest

from exporter.config import Budget, Config, load_config, parse_duration
from exporter.demo import DEMO_INTERVAL, demo_config, quota_speedup, scale_quotas, tight_budget_provider

INTERVAL = parse_duration(DEMO_INTERVAL)


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load_config(env={})


def test_an_hourly_quota_keeps_its_production_share(shipped: Config) -> None:
    # blockcypher: two endpoints under a 40-per-hour budget, against a 100-per-hour quota.
    p = shipped.provider("blockcypher")
    assert p.budget == Budget(requests=40, per=3600.0) and [q.limit_value for q in p.quota_headers] == [100.0]
    production_per_hour = min(sum(3600 / ep.interval for ep in p.endpoints), 40)
    demo_per_hour = 2 * 3600 / INTERVAL
    (scaled,) = scale_quotas(shipped, INTERVAL).provider("blockcypher").quota_headers
    assert demo_per_hour / scaled.limit_value == pytest.approx(production_per_hour / 100)
    assert production_per_hour / 100 < 0.5  # and that share is far from the alert's 95 %


def test_every_configured_quota_holds_an_hour_of_the_demo(shipped: Config) -> None:
    """Without the budget: a quota the demo's schedule would burn through in under an
    hour would warn or page in a quiet demo (the alert-quality harness saw blockcypher)."""
    config = demo_config(shipped, "http://127.0.0.1:1", INTERVAL)
    for p in config.providers:
        rate = sum(1 / ep.interval for ep in p.endpoints)
        for q in p.quota_headers:
            if q.limit_value is not None and q.window is not None:
                assert rate * q.window < 0.95 * q.limit_value, (p.name, q.scope)


def test_at_production_speed_nothing_is_scaled(shipped: Config) -> None:
    slowest = max(ep.interval for p in shipped.providers for ep in p.endpoints)
    assert all(quota_speedup(p, slowest) == 1.0 for p in shipped.providers)
    assert scale_quotas(shipped, slowest).providers == shipped.providers


def test_the_tight_budget_goes_to_the_first_budgeted_provider(shipped: Config) -> None:
    first = next(p.name for p in shipped.providers if p.budget is not None)
    assert tight_budget_provider(shipped) == first
    budget = demo_config(shipped, "http://127.0.0.1:1", INTERVAL).provider(first).budget
    assert budget is not None and budget.per == 20.0
