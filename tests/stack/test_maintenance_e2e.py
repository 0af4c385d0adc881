"""End to end (issue 11): maintenance announced by the simulator silences the
provider's ProviderDown in a real Alertmanager.

The demo's simulator and exporter, a real Prometheus with the committed rules and a
real Alertmanager with the committed routes and inhibitions, at the shipped timings
(test_e2e.py's stack). binance's status source announces maintenance while every
binance endpoint answers 503; okx fails the same way without maintenance, as the
control. okx pages; binance does not, although the exporter reports it offline; its
ProviderMaintenance is live in Alertmanager and inhibits a binance ProviderDown that
reaches Alertmanager anyway (as one from another rule file would). About three minutes.
"""

from __future__ import annotations

import pytest

from .helpers import http_json, wait_until
from .test_alertmanager import post_alerts
from .test_e2e import EXPORTER_JOB, PAGE_GOAL, Stack, stack  # noqa: F401 - `stack` is the fixture

pytestmark = [pytest.mark.binary, pytest.mark.timeout(480)]

MAINTAINED, CONTROL = "binance", "okx"


def am_alerts(running: Stack, alertname: str, provider: str) -> list[dict]:
    return [
        a for a in http_json(f"{running.alertmanager}/api/v2/alerts") if a["labels"].get("alertname") == alertname and a["labels"].get("provider") == provider
    ]


def test_maintenance_silences_provider_down_in_a_real_alertmanager(stack: Stack) -> None:  # noqa: F811 - the fixture
    for provider in (MAINTAINED, CONTROL):
        wait_until(
            lambda p=provider: stack.query(f'max(crypto_api_up{{job="{EXPORTER_JOB}", provider="{p}"}}) == 1'),
            timeout=60, what=f"{provider} up in Prometheus",
        )  # fmt: skip

    # binance: maintenance announced by its status source, and every endpoint down.
    http_json(f"{stack.simulator}/control/faults", {"provider": MAINTAINED, "endpoint": "system_status", "maintenance": "ongoing"}, method="POST")
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
