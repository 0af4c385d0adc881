"""The status page's PromQL (exporter/web/api/uptime.py), evaluated by the real promtool:
uptime leaves out status sources and budget skips, keeps a provider with no success at
0, and the latency ratio is the mean of the probes that got a response."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from exporter.web.api.uptime import Window, latency_expr, uptime_expr

L = 'job="crypto-api-exporter",instance="exporter:7860",category="exchanges"'


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    extra = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{L},{extra}}}", "values": values}


INPUT = [
    # binance: 9 successes and 1 server error every 15 minutes on `ticker`; its status source
    # (no crypto_api_up) fails 100 times every 15 minutes, and 50 probes every 15 minutes are budget skips.
    series("crypto_api_up", "1x120", provider="binance", endpoint="ticker"),
    series("crypto_api_probes_total", "0+9x120", provider="binance", endpoint="ticker", outcome="success"),
    series("crypto_api_probes_total", "0+1x120", provider="binance", endpoint="ticker", outcome="server_error"),
    series("crypto_api_probes_total", "0+48x120", provider="binance", endpoint="ticker", outcome="budget_exhausted"),
    series("crypto_api_probes_total", "0+100x120", provider="binance", endpoint="system_status", outcome="server_error"),
    # kraken: nothing but timeouts: 0, not missing.
    series("crypto_api_up", "0x120", provider="kraken", endpoint="ticker"),
    series("crypto_api_probes_total", "0+4x120", provider="kraken", endpoint="ticker", outcome="timeout"),
    # binance's latency: 4 probes every 15 minutes of 0.25 s each on ticker (exact in binary:
    # promtool compares floats exactly); the status source's 3 s are left out.
    series("crypto_api_probe_duration_seconds_sum", "0+1x120", provider="binance", endpoint="ticker"),
    series("crypto_api_probe_duration_seconds_count", "0+4x120", provider="binance", endpoint="ticker"),
    series("crypto_api_probe_duration_seconds_sum", "0+300x120", provider="binance", endpoint="system_status"),
    series("crypto_api_probe_duration_seconds_count", "0+100x120", provider="binance", endpoint="system_status"),
]


def test_status_page_queries_on_promtool(tmp_path: Path, promtool: str) -> None:
    tests = {
        "rule_files": [],
        "evaluation_interval": "15m",
        "tests": [
            {
                "interval": "15m",
                "input_series": INPUT,
                "promql_expr_test": [
                    {
                        "expr": uptime_expr(Window.DAY),
                        "eval_time": "30h",
                        "exp_samples": [{"labels": '{provider="binance"}', "value": 0.9}, {"labels": '{provider="kraken"}', "value": 0}],
                    },
                    {"expr": latency_expr(Window.DAY.value), "eval_time": "30h", "exp_samples": [{"labels": '{provider="binance"}', "value": 0.25}]},
                    {"expr": latency_expr("1800s"), "eval_time": "30h", "exp_samples": [{"labels": '{provider="binance"}', "value": 0.25}]},
                ],
            }
        ],
    }
    path = tmp_path / "status_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_promtool_check_can_fail(tmp_path: Path, promtool: str) -> None:
    """A wrong expectation fails: the test above is not vacuous."""
    tests = {
        "rule_files": [],
        "tests": [
            {
                "interval": "15m",
                "input_series": INPUT,
                "promql_expr_test": [{"expr": uptime_expr(Window.DAY), "eval_time": "30h", "exp_samples": [{"labels": '{provider="binance"}', "value": 0.5}]}],
            }
        ],
    }
    path = tmp_path / "status_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
