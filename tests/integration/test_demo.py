"""The demo as a newcomer runs it (`make demo`): chaos on, every outcome within a minute,
a readable banner, a log without colour codes in a pipe, the API open for actions."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

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


def test_demo_shows_every_outcome_within_a_minute(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    first_seen: dict[str, float] = {}
    with cli(["demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}", "--log.format=console"], tmp_path) as demo:

        def all_seen() -> bool:
            for outcome in outcomes_seen(http("GET", f"{base}/metrics")[1]):
                first_seen.setdefault(outcome, round(time.monotonic() - started, 1))
            return len(first_seen) == len(Outcome)

        try:
            wait_until(all_seen, DEADLINE + 5, "every outcome in the demo")
        finally:
            print("first seen (s after start):", json.dumps(dict(sorted(first_seen.items(), key=lambda kv: kv[1]))))
        assert set(first_seen) == {o.value for o in Outcome}
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
