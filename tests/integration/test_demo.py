"""The demo as a newcomer runs it (`make demo`): chaos on, every outcome (and a provider
in maintenance, and a frozen price: issue 11) within a minute,
a readable banner, a log without colour codes in a pipe, the API open for actions."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.model import Outcome

from .processes import cli, free_port, http, wait_until

DEADLINE = 60.0  # seconds from start: the README's promise


def outcomes_seen(text: str) -> set[str]:
    return {
        s.labels["outcome"]
        for f in text_string_to_metric_families(text)
        if f.name == "crypto_api_probes"
        for s in f.samples
        if s.name == "crypto_api_probes_total" and s.value > 0
    }


def maintenance_and_frozen_seen(text: str, now: float) -> set[str]:
    """ "maintenance" once a provider's status source says so; "frozen" once a value has
    stood still for the demo's max_unchanged (4 intervals of 5 s) while its endpoint
    ended stale (issue 11)."""
    seen: set[str] = set()
    stale: set[tuple[str, str]] = set()
    still: set[tuple[str, str]] = set()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "crypto_api_provider_maintenance" and s.value == 1:
                seen.add("maintenance")
            elif s.name == "crypto_api_probes_total" and s.labels["outcome"] == "stale" and s.value > 0:
                stale.add((s.labels["provider"], s.labels["endpoint"]))
            elif s.name == "crypto_api_value_last_change_timestamp_seconds" and now - s.value > 20:
                still.add((s.labels["provider"], s.labels["endpoint"]))
    if stale & still:
        seen.add("frozen")
    return seen


@pytest.mark.wallclock
def test_demo_shows_every_outcome_within_a_minute(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    first_seen: dict[str, float] = {}
    with cli(["demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}", "--log.format=console"], tmp_path) as demo:

        def all_seen() -> bool:
            text = http("GET", f"{base}/metrics")[1]
            for outcome in outcomes_seen(text) | maintenance_and_frozen_seen(text, time.time()):
                first_seen.setdefault(outcome, round(time.monotonic() - started, 1))
            return len(first_seen) == len(Outcome) + 2

        try:
            wait_until(all_seen, DEADLINE + 5, "every outcome in the demo")
        finally:
            print("first seen (s after start):", json.dumps(dict(sorted(first_seen.items(), key=lambda kv: kv[1]))))
        assert set(first_seen) == {o.value for o in Outcome} | {"maintenance", "frozen"}
        assert max(first_seen.values()) <= DEADLINE, first_seen
        # Made-up keys for every key env var: every provider runs, none is disabled.
        status = json.loads(http("GET", f"{base}/api/status")[1])
        assert status["disabled"] == 0 and status["total_apis"] >= 60, status
        # The demo opens the routes that act (no real quota is at stake).
        status, body = http("POST", f"{base}/api/schedule/trigger", json.dumps({"provider": "binance"}).encode())
        assert status == 200, body
        output = demo.output()
    banner = output[output.index("Crypto API Exporter demo") :]
    for shown in (f"{base}/metrics", f"{base}/api/status", f"{base}/docs", f"http://127.0.0.1:{sim_port}/control/faults"):
        assert shown in banner
    # Console logs in a pipe: readable text, no ANSI colour codes.
    assert "\x1b[" not in output
    assert re.search(r"\[warning\s*\] probe", output)
