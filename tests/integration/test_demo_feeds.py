"""The demo's feeds: all six venues on the simulator move within a minute, and the
opening chaos round shows each feed signal (silence reconnect, gaps, lag, malformed)."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .processes import cli, free_port, http, wait_until

DEADLINE = 60.0


def totals(text: str) -> dict[str, dict[str, float]]:
    """sample name -> provider (or provider:reason) -> value, for the feed families."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("crypto_api_feed_"):
                key = s.labels["provider"] + (f":{s.labels['reason']}" if "reason" in s.labels else "")
                if "le" not in s.labels:
                    out.setdefault(s.name, {})[key] = s.value
    return out


def test_demo_feeds_move_within_a_minute(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with cli(["demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}"], tmp_path):
        seen: dict[str, dict[str, float]] = {}

        def moving() -> bool:
            seen.clear()
            seen.update(totals(http("GET", f"{base}/metrics")[1]))
            messages = seen.get("crypto_api_feed_messages_total", {})
            return (
                len(messages) == 6
                and all(v > 0 for v in messages.values())
                and sum(v for k, v in seen.get("crypto_api_feed_reconnects_total", {}).items() if k.endswith(":silence")) > 0
                and sum(seen.get("crypto_api_feed_sequence_gaps_total", {}).values()) > 0
                and sum(seen.get("crypto_api_feed_malformed_messages_total", {}).values()) > 0
            )

        wait_until(moving, DEADLINE, "feeds moving, with silence, gaps and malformed frames")
        assert time.monotonic() - started <= DEADLINE + 5
        status, body = http("GET", f"{base}/api/feeds")
        assert status == 200, body
