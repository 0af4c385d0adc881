"""The CLI as a user runs it: demo exposition under promtool, no secret anywhere, reloads."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import require_binary

from .processes import cli, free_port, http, registry_subset, wait_until, write_yaml

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


def contract_names() -> set[str]:
    """The metric names of DESIGN.md's contract, as documented in docs/metrics.md."""
    return set(re.findall(r"^\| `(crypto_api_[a-z_]+)`", CONTRACT.read_text(), re.M))


@pytest.mark.wallclock
def test_demo_exposition_passes_promtool_and_covers_the_contract(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    # 3 s: a 5xx retry (0.5 s backoff, then up to 2.4 s) fits in the interval; at 1 s none would.
    with cli(
        ["demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}", "--interval", "3s", "--no-chaos"], tmp_path
    ) as demo:
        wait_until(lambda: http("GET", f"{base}/healthz")[0] == 200, 20, "the demo to listen")
        # A deterministic failure, so retry and failure series exist too.
        status, _ = http(
            "POST", f"http://127.0.0.1:{sim_port}/control/faults", json.dumps({"provider": "kraken", "endpoint": "btc_ticker", "status": 503}).encode()
        )
        assert status in (200, 201)

        def ready() -> str | None:
            text = http("GET", f"{base}/metrics")[1]
            # z-scores need 10 latencies per endpoint: then every family has samples.
            return text if "crypto_api_latency_anomaly_zscore{" in text and 'reason="server_error"' in text else None

        text = wait_until(ready, 90, "z-scores and retries in the demo's /metrics")
        output = demo.output()
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""
    # Every name of the contract is served (histograms and counters under their family name).
    exposed = {n.removesuffix("_total") for n in families(text)}
    expected = {n.removesuffix("_total") for n in contract_names()}
    assert (
        len(expected) == 26 + 8 + 9 + 3
    )  # the contract with issue 11's value last change and maintenance, its chain heads, the feeds' families (the demo runs feeds), the incident service's
    assert expected <= exposed, expected - exposed
    assert "Crypto API Exporter demo" in output and f"{base}/metrics" in output
    values = samples(text)
    # The server's own requests (exporter.traffic, OTel names) were in what promtool checked.
    healthz = frozenset({("http_request_method", "GET"), ("http_route", "/healthz"), ("http_response_status_code", "200")})
    assert values[("http_server_request_duration_seconds_count", healthz)] >= 1
    assert "crypto_api_exporter_requests_total" not in text
    btc = [v for (name, labels), v in values.items() if name == "crypto_api_value" and ("name", "btc_usd") in labels]
    assert len(btc) >= 3


def test_canary_key_appears_nowhere(tmp_path: Path) -> None:
    canary_1, canary_2, canary_3 = "CANARY-ae81f9c2d7", "CANARY-5b0e44a19c", "CANARY-77d2c0f3e1"
    sim_port, port, closed = free_port(), free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    data = registry_subset(["etherscan", "coinmarketcap"], sim_url)
    # A key in the URL path (Infura style) against a closed port: exception text has the URL.
    data["providers"].append(
        {
            "name": "infura",
            "category": "rpc_nodes",
            "base_url": f"http://127.0.0.1:{closed}/v3/{{key}}",
            "auth": {"type": "path", "env": ["INFURA_API_KEY"]},
            "endpoints": [
                {
                    "name": "block_number",
                    "method": "POST",
                    "json": {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1},
                    "interval": "2s",
                    "timeout": "1s",
                }
            ],
        }
    )
    config = write_yaml(tmp_path / "providers.yaml", data)
    env = {"ETHERSCAN_API_KEY_1": canary_1, "ETHERSCAN_API_KEY_2": canary_2, "CMC_API_KEY": canary_1, "INFURA_API_KEY": canary_3, "LOG_LEVEL": "DEBUG"}
    base = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    with cli(["simulate", "-c", str(config), f"--web.listen-address=127.0.0.1:{sim_port}"], tmp_path, name="simulator") as sim:
        wait_until(lambda: http("GET", f"{sim_url}/control/health")[0] == 200, 20, "the simulator")
        status, body = http("POST", f"{sim_url}/control/faults", json.dumps({"provider": "*", "invalid_keys": [canary_1, canary_2]}).encode())
        assert status in (200, 201)
        seen.append(body)
        with cli(["run", "-c", str(config), f"--web.listen-address=127.0.0.1:{port}"], tmp_path, env=env) as exporter:
            wait_until(lambda: http("GET", f"{base}/healthz")[0] == 200, 20, "the exporter")

            def rejected() -> str | None:
                text = http("GET", f"{base}/metrics")[1]
                got = samples(text)
                done = got.get(("crypto_api_key_valid", frozenset({("provider", "etherscan"), ("key", "ETHERSCAN_API_KEY_1")}))) == 0
                refused = (
                    got.get(
                        (
                            "crypto_api_probes_total",
                            frozenset({("provider", "infura"), ("category", "rpc_nodes"), ("endpoint", "block_number"), ("outcome", "connection_error")}),
                        ),
                        0,
                    )
                    >= 1
                )
                return text if done and refused else None

            seen.append(wait_until(rejected, 30, "the canary keys to be rejected"))
            for path in ("/", "/healthz", "/metrics"):
                seen.append(http("GET", base + path)[1])
            status, body = http("POST", f"{base}/-/reload")
            assert status == 403 and "--web.enable-lifecycle" in body  # no lifecycle API unless asked
            seen.append(body)
            exporter.signal(signal.SIGHUP)
            seen.append(http("GET", f"{base}/metrics")[1])
        seen.append(exporter.output())
        seen.append(http("GET", f"{sim_url}/control/faults")[1])
    seen.append(sim.output())
    check = subprocess.run(
        [sys.executable, "-m", "exporter", "check-config", str(config)], capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"}, timeout=60
    )
    seen.append(check.stdout + check.stderr)
    everything = "\n".join(seen)
    outcomes = {line.get("outcome") for line in log_lines(exporter.output()) if line.get("event") == "probe"}
    assert {"auth_error", "connection_error"} <= outcomes
    assert 'key="ETHERSCAN_API_KEY_1"' in everything
    for canary in (canary_1, canary_2, canary_3):
        assert canary not in everything
        # Not even a prefix long enough to narrow a key down.
        assert canary[:12] not in everything


def log_lines(output: str) -> list[dict]:
    """The JSON log lines of a process's output (other lines skipped)."""
    out = []
    for line in output.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _probe_count(text: str, provider: str) -> float:
    return sum(v for (name, labels), v in samples(text).items() if name == "crypto_api_probes_total" and ("provider", provider) in labels)


def test_reload_keeps_last_good_config_and_drops_removed_series(tmp_path: Path) -> None:
    sim_port, port = free_port(), free_port()
    sim_url, base = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    good = registry_subset(["binance", "alternative_me"], sim_url, interval="1s", timeout="800ms")
    config = write_yaml(tmp_path / "providers.yaml", good)
    with cli(["simulate", "-c", str(config), f"--web.listen-address=127.0.0.1:{sim_port}"], tmp_path, name="simulator"):
        wait_until(lambda: http("GET", f"{sim_url}/control/health")[0] == 200, 20, "the simulator")
        with cli(["run", "-c", str(config), f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"], tmp_path) as exporter:
            # Every endpoint probed once: first runs fall anywhere in the first interval, and
            # binance's series are checked after the reloads below.
            up = {
                ("crypto_api_up", frozenset({("provider", p["name"]), ("category", p["category"]), ("endpoint", ep["name"])}))
                for p in good["providers"]
                for ep in p["endpoints"]
                if ep.get("kind") != "status"  # a status source has no crypto_api_up (docs/maintenance.md)
            }
            wait_until(lambda: up <= set(samples(http("GET", f"{base}/metrics")[1])), 20, "first probes of every endpoint")

            # A bad file, by SIGHUP: the reload fails, the old config keeps probing.
            config.write_text(config.read_text().replace("category: exchanges", "category: exchange"))
            exporter.signal(signal.SIGHUP)
            wait_until(lambda: "crypto_api_config_last_reload_successful 0.0" in http("GET", f"{base}/metrics")[1], 10, "the failed reload")
            before = _probe_count(http("GET", f"{base}/metrics")[1], "binance")
            wait_until(lambda: _probe_count(http("GET", f"{base}/metrics")[1], "binance") > before, 10, "probing to go on")

            # The same by POST /-/reload: a 422 naming the field.
            status, body = http("POST", f"{base}/-/reload")
            assert status == 422
            errors = json.loads(body)["errors"]
            assert errors == [
                f"{config}: providers[binance].category: invalid value 'exchange' (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)"
            ]

            # A good file without alternative_me: its series vanish, binance's stay.
            good["providers"] = [p for p in good["providers"] if p["name"] == "binance"]
            write_yaml(config, good)
            status, body = http("POST", f"{base}/-/reload")
            assert (status, json.loads(body)) == (200, {"status": "ok"})
            text = http("GET", f"{base}/metrics")[1]
            assert "crypto_api_config_last_reload_successful 1.0" in text
            assert 'provider="alternative_me"' not in text
            assert ("crypto_api_up", frozenset({("provider", "binance"), ("category", "exchanges"), ("endpoint", "ping")})) in samples(text)
        log = exporter.output()
    events = {line["event"] for line in log_lines(log)}
    assert {"config_reload_failed", "config_reloaded"} <= events


def raw_exchange(port: int, data: bytes, close_early: bool = False) -> bytes:
    """Send raw bytes to the exporter; read its answer until it closes the connection (or
    leave at once, mid-request, with `close_early`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if close_early:
            time.sleep(0.2)  # the server has started on the request
            return b""
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_api_token_in_malformed_requests_appears_nowhere(tmp_path: Path) -> None:
    """Requests aiohttp's parser refuses, carrying the configured token in the places
    clients put it: each is answered with the JSON error and logged as one structured line;
    the token is in no line of the process's output (LOG_LEVEL=DEBUG)."""
    canary = "CANARY-api-token-7f3e91b2c4"
    port, closed = free_port(), free_port()
    config = write_yaml(tmp_path / "providers.yaml", registry_subset(["binance"], f"http://127.0.0.1:{closed}", interval="1h"))
    env = {"API_TOKENS": canary, "LOG_LEVEL": "DEBUG"}
    t = canary.encode()
    malformed = [
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t + b"\r\nX-Bad: a\x01b\r\n\r\n",
        b"GET /ws/live?token=" + t + b" HTT/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t + b"a" * 9000 + b"\r\n\r\n",
        b"GET /api/status?api_key=" + t + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + t + b"\r\n0\r\n\r\n",
    ]
    with cli(["run", "-c", str(config), f"--web.listen-address=127.0.0.1:{port}"], tmp_path, env=env) as exporter:
        wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the exporter")
        answers = [raw_exchange(port, request) for request in malformed]
        # A client that leaves while its body is read: a 499, at debug.
        raw_exchange(port, b"POST /api/schedule/trigger HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t + b"\r\nContent-Length: 100\r\n\r\n{", close_early=True)
        trigger = {("http_request_method", "POST"), ("http_route", "/api/schedule/trigger")}

        def requests(code: str) -> float | None:
            return samples(http("GET", f"http://127.0.0.1:{port}/metrics")[1]).get(
                ("http_server_request_duration_seconds_count", frozenset({*trigger, ("http_response_status_code", code)}))
            )

        wait_until(lambda: requests("499") == 1, 10, "the 499")
        assert requests("500") is None
        time.sleep(0.3)  # the log's batch is written within 0.1 s
        output = exporter.output()
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b" 400 " in head.split(b"\r\n")[0] and b"application/json" in head, answer[:300]
        assert set(json.loads(body)) == {"error", "detail", "field"}
        assert t not in answer
    assert canary not in output and canary[:12] not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line one JSON object
    refused = [line for line in lines if line["event"] == "http_bad_request"]
    assert len(refused) == len(malformed) and {line["remote"] for line in refused} == {"127.0.0.1"}
    assert any(line["event"] == "client_disconnected" and line["level"] == "debug" for line in lines)
    assert not [line for line in lines if line["level"] == "error"]


def test_api_tokens_set_to_no_token_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    with cli(["run", f"--web.listen-address=127.0.0.1:{port}"], tmp_path, env={"API_TOKENS": ","}) as exporter:
        assert exporter.proc.wait(timeout=30) == 1
    output = exporter.output()
    assert "error: API_TOKENS: set to ',', which holds no token" in output, output
