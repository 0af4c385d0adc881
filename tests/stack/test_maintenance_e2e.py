"""End to end (issue 11): maintenance announced by the simulator silences the
provider's ProviderDown in a real Alertmanager.

The demo's simulator and exporter, a real Prometheus with the committed rules and a
real Alertmanager with the committed routes and inhibitions (test_e2e.py's stack).
binance's status source announces maintenance, then every binance endpoint answers
503; okx fails the same way without maintenance, as the control. okx pages; binance
does not, although the exporter reports it offline; its ProviderMaintenance is live in
Alertmanager and inhibits a binance ProviderDown that reaches Alertmanager anyway (as
one from another rule file would).

This test checks what fires and what is muted, not when (test_e2e.py measures the
shipped timings): Prometheus scrapes and evaluates every 2 s, every `for:` is a
quarter of the committed one and Alertmanager waits 1 s, so it takes under a minute
instead of three.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import http_json, wait_until
from .test_alertmanager import post_alerts
from .test_e2e import EXPORTER_JOB, PAGE_GOAL, Stack, Timings, run_stack

pytestmark = [pytest.mark.binary, pytest.mark.wallclock, pytest.mark.timeout(480)]

MAINTAINED, CONTROL = "binance", "okx"
FAST = Timings(interval="2s", for_divisor=4, group_wait="1s")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with run_stack(tmp_path, FAST) as running_stack:
        yield running_stack


def am_alerts(running: Stack, alertname: str, provider: str) -> list[dict]:
    return [
        a for a in http_json(f"{running.alertmanager}/api/v2/alerts") if a["labels"].get("alertname") == alertname and a["labels"].get("provider") == provider
    ]


def test_maintenance_silences_provider_down_in_a_real_alertmanager(stack: Stack) -> None:
    for provider in (MAINTAINED, CONTROL):
        wait_until(
            lambda p=provider: stack.query(f'max(crypto_api_up{{job="{EXPORTER_JOB}", provider="{p}"}}) == 1'),
            timeout=60, what=f"{provider} up in Prometheus",
        )  # fmt: skip

    # binance: maintenance announced by its status source (and seen by the rules' guard,
    # which ProviderDown reads one evaluation late, across groups), then every endpoint
    # down. Both at once would race the status probe against the endpoints' probes.
    http_json(f"{stack.simulator}/control/faults", {"provider": MAINTAINED, "endpoint": "system_status", "maintenance": "ongoing"}, method="POST")
    wait_until(
        lambda: stack.query(f'provider:crypto_api_maintenance:max_over_time10m{{provider="{MAINTAINED}"}} == 1'),
        timeout=60, what=f"{MAINTAINED}'s maintenance in the rules' guard",
    )  # fmt: skip
    http_json(f"{stack.simulator}/control/faults", {"provider": MAINTAINED, "status": 503}, method="POST")
    # okx: the same outage without maintenance (its status source fails too: a failing
    # source mutes nothing).
    http_json(f"{stack.simulator}/control/faults", {"provider": CONTROL, "status": 503}, method="POST")

    wait_until(
        lambda: stack.receiver.alerts("pagerduty-critical", "firing", alertname="ProviderDown", provider=CONTROL),
        timeout=PAGE_GOAL + 30, interval=0.5, what=f"ProviderDown of {CONTROL} at the receiver",
    )  # fmt: skip

    # The exporter reports binance's outage as it is, and its maintenance beside it.
    assert stack.query(f'crypto_api_provider_status{{provider="{MAINTAINED}", status="offline"}} == 1')
    assert stack.query(f'crypto_api_provider_maintenance{{provider="{MAINTAINED}"}} == 1')
    assert not stack.query(f'crypto_api_provider_maintenance{{provider="{CONTROL}"}} == 1')
    # binance's status source answers, okx's fails: no crypto_api_up for either source.
    assert not stack.query('crypto_api_up{endpoint="system_status"}')
    # ProviderMaintenance is live in Alertmanager (info: sent nowhere) ...
    wait_until(lambda: am_alerts(stack, "ProviderMaintenance", MAINTAINED), timeout=60, what="ProviderMaintenance in Alertmanager")
    # ... no binance ProviderDown was ever pending or firing, nor sent ...
    assert not stack.query(f'count_over_time(ALERTS{{alertname="ProviderDown", provider="{MAINTAINED}"}}[10m])')
    assert not stack.receiver.alerts("pagerduty-critical", "firing", alertname="ProviderDown", provider=MAINTAINED)
    # ... and one that reaches Alertmanager anyway is inhibited by it, unlike okx's.
    post_alerts(stack.alertmanager, [{"alertname": "ProviderDown", "severity": "critical", "provider": MAINTAINED, "category": "exchanges"}])
    (down,) = wait_until(lambda: am_alerts(stack, "ProviderDown", MAINTAINED), timeout=15, what="the posted ProviderDown")
    maintenance = am_alerts(stack, "ProviderMaintenance", MAINTAINED)[0]
    assert down["status"]["inhibitedBy"] == [maintenance["fingerprint"]]
    assert all(not a["status"]["inhibitedBy"] for a in am_alerts(stack, "ProviderDown", CONTROL))
