"""The demo's chain heads (issue 11): within two minutes of `crypto-api-exporter demo`,
/metrics shows heads moving, a node on another chain, a syncing node, a node lagging
beyond its bound and a rogue node far ahead, from the demo's own chain chaos."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .processes import cli, free_port, http, wait_until

DEADLINE = 120.0


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_demo_shows_chain_heads_moving_and_every_node_fault_within_two_minutes(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    first_heads: dict[frozenset[tuple[str, str]], float] = {}
    seen: dict[str, float] = {}
    with cli(["demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}"], tmp_path):

        def check() -> bool:
            now = round(time.monotonic() - started, 1)
            found = samples(http("GET", f"{base}/metrics")[1])
            for (name, labels), value in found.items():
                chain = dict(labels).get("chain")
                if name == "crypto_api_chain_head_block" and chain == "ethereum":
                    first = first_heads.setdefault(labels, value)
                    if value > first:
                        seen.setdefault("ethereum_head_moved", now)
                if name == "crypto_api_chain_id_mismatch" and value == 1:
                    seen.setdefault("wrong_chain", now)
                if name == "crypto_api_chain_syncing" and value == 1:
                    seen.setdefault("syncing", now)
                if name == "crypto_api_chain_head_lag_blocks" and value >= 20:
                    seen.setdefault("lagging", now)
                if name == "crypto_api_chain_head_lag_blocks" and value <= -30_000_000:
                    seen.setdefault("rogue", now)
                if name == "crypto_api_chain_reference_head_block":
                    seen.setdefault(f"reference_{chain}", now)
            return len(seen) == 5 + 8

        try:
            wait_until(check, DEADLINE + 5, "chain heads and node faults in the demo")
        finally:
            print("first seen (s after start):", dict(sorted(seen.items(), key=lambda kv: kv[1])))
        assert max(seen.values()) <= DEADLINE, seen
