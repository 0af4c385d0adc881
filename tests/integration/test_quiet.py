"""Issue 13, point 3, as a user meets it: with no key set, a plain `run` of the shipped
registry probes only the providers that need no key; the log says once per disabled
provider which env vars it reads, with no auth_error noise; /api/status counts the
disabled ones apart; and a reload says nothing again.

The registry is the shipped one, pointed at the simulator on loopback by a user's file
that `extends: shipped` (so the include mechanism runs end to end too): it changes each
provider's base_url, timing and budget, and nothing about auth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from exporter.config import DEFAULT_FILE, load_config
from exporter.model import ProbeKind

from .processes import cli, free_port, http, wait_until, write_yaml
from .test_process import log_lines, samples

TIMING = ("interval", "timeout", "jitter", "slow_threshold")


def on_the_simulator(sim_url: str) -> dict[str, Any]:
    """A file over the shipped registry: every provider at the simulator, probed every 2 s
    (so without its budget, which a 2 s schedule would spend at once)."""
    shipped = yaml.safe_load(DEFAULT_FILE.read_text())
    overrides = []
    for p in shipped["providers"]:
        path = urllib.parse.urlparse(p["base_url"]).path
        endpoints = [{k: v for k, v in ep.items() if k not in TIMING} for ep in p["endpoints"]]
        for ep in endpoints:
            if "status" in ep and "base_url" in ep["status"]:  # a status page on its own host, served under the provider's prefix
                ep["status"] = {**ep["status"], "base_url": f"{sim_url}/sim/{p['name']}{path}"}
            if "chain" in ep:  # the simulator serves each chain node under its own path
                node = urllib.parse.urlparse(ep.get("url") or p["base_url"] + ep.get("path", "")).path.rstrip("/")
                ep["url"] = f"{sim_url}/sim/{p['name']}/~{ep['name']}{node}"
        overrides.append(
            {
                "name": p["name"],
                "base_url": f"{sim_url}/sim/{p['name']}{path}",
                "interval": "2s",
                "timeout": "1s",
                "jitter": "0s",
                "slow_threshold": None,
                "rate_limit": None,
                "endpoints": endpoints,
            }
        )
    return {"extends": "shipped", "providers": overrides}


def test_with_no_key_set_run_probes_only_keyless_providers_and_says_so_once(tmp_path: Path) -> None:
    registry = load_config(env={})
    need_key = {p.name: list(p.auth.env) for p in registry.providers if p.auth.requires_key}
    keyless = {p.name: p for p in registry.providers if p.name not in need_key}
    assert len(need_key) >= 20 and len(keyless) >= 30  # the shipped registry as issue 13 describes it
    sim_port, port = free_port(), free_port()
    sim_url, base = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    config = write_yaml(tmp_path / "mine.yaml", on_the_simulator(sim_url))
    up = {
        ("crypto_api_up", frozenset({("provider", p.name), ("category", p.category.value), ("endpoint", ep.name)}))
        for p in keyless.values()
        for ep in p.endpoints
        if ep.kind is not ProbeKind.STATUS  # a side channel: its own outcomes, never an `up`
    }

    # cli() runs with no *_API_KEY* variable of this machine's environment.
    with cli(["simulate", f"--web.listen-address=127.0.0.1:{sim_port}"], tmp_path, name="simulator"):
        wait_until(lambda: http("GET", f"{sim_url}/control/health")[0] == 200, 20, "the simulator")
        with cli(["run", "-c", str(config), f"--web.listen-address=127.0.0.1:{port}"], tmp_path) as exporter:
            # Every endpoint of every keyless provider probed (first runs spread over 5 s).
            def all_probed() -> str | None:
                metrics = http("GET", f"{base}/metrics")[1]
                return metrics if up <= set(samples(metrics)) else None

            text = wait_until(all_probed, 60, "a probe of every keyless endpoint")
            status = json.loads(http("GET", f"{base}/api/status")[1])
            disabled = json.loads(http("GET", f"{base}/api/providers?status=disabled")[1])
            exporter.signal(signal.SIGHUP)  # a reload with nothing changed: nothing to say again
            wait_until(lambda: any(line.get("event") == "config_reloaded" for line in log_lines(exporter.output())), 10, "the reload")
            log = log_lines(exporter.output())

    # Probed: exactly the keyless providers, every endpoint of them; the others have no `up`.
    probed = {dict(labels)["provider"] for (name, labels) in samples(text) if name == "crypto_api_up"}
    assert probed == set(keyless)
    # No key is set, so there is no key to call invalid: no ApiKeyInvalid for optional keys left unset.
    assert not [labels for (name, labels) in samples(text) if name == "crypto_api_key_valid"]
    info = {dict(labels)["provider"]: dict(labels)["enabled"] for (name, labels) in samples(text) if name == "crypto_api_provider_info"}
    assert info == {**dict.fromkeys(keyless, "true"), **dict.fromkeys(need_key, "false")}

    # The log: one line per disabled provider naming its env vars; not one auth_error, not one warning.
    lines = [line for line in log if line.get("event") == "provider_disabled"]
    assert sorted(line["provider"] for line in lines) == sorted(need_key)
    assert all(line["env"] == need_key[line["provider"]] and line["reason"] == "no_key" and line["level"] == "info" for line in lines)
    assert not [line for line in log if line.get("outcome") == "auth_error" or "auth_error" in json.dumps(line)]
    assert not [line for line in log if line.get("level") in ("warning", "error")]
    (started,) = [line for line in log if line.get("event") == "exporter_started"]
    assert (started["providers"], started["disabled"]) == (len(keyless), len(need_key))

    # /api/status counts them apart: not in total_apis, not offline.
    assert (status["total_apis"], status["disabled"], status["offline"], status["unknown"]) == (len(keyless), len(need_key), 0, 0)
    assert {row["name"]: row["disabled_reason"] for row in disabled} == dict.fromkeys(need_key, "no_key")

    # check-config says the same, once per provider.
    env = {k: v for k, v in os.environ.items() if "_API_KEY" not in k}
    check = subprocess.run([sys.executable, "-m", "exporter", "check-config", str(config)], capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 0, check.stderr
    assert sorted(line.split("]")[0].removeprefix("disabled: providers[") for line in check.stderr.splitlines() if line.startswith("disabled: ")) == sorted(
        need_key
    )
    assert check.stdout.strip().endswith(f"{len(keyless)} probed, {len(need_key)} disabled")
    assert "warning" not in check.stderr
