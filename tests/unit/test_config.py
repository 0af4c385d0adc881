"""providers.yaml validation: every mistake named by location, one line each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import (
    AuthType,
    ConfigError,
    load_config,
    parse_config,
    parse_duration,
)
from exporter.model import Outcome

DATA = Path(__file__).parent.parent / "testdata"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["60", "5x", "", "1 m", "m5", "10 seconds", 60, None])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


INVALID = {
    "invalid-unknown-field.yml": [
        "providers[coingecko].endpoints[ping].intervall: unknown field (did you mean 'interval'?)",
    ],
    "invalid-duration.yml": [
        "providers[binance].endpoints[ping].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)",
    ],
    "invalid-missing-base-url.yml": [
        "providers[etherscan].base_url: required field is missing",
    ],
    "invalid-jmespath.yml": [
        "providers[okx].endpoints[ticker].values[0].path: invalid JMESPath 'data[0].last[[': Expecting: star, got: lbracket at column 13",
    ],
    "invalid-not-a-mapping.yml": [
        "the file must be a mapping with a 'providers' list, got a list",
    ],
    "invalid-yaml-syntax.yml": [
        "line 4, column 1: expected ',' or ']', but got '<stream end>'",
    ],
    "invalid-several.yml": [
        "defaults.timeout: invalid duration '10 seconds' (use e.g. 30s, 5m, 1h)",
        "providers[etherscan].category: invalid value 'explorer' (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)",
        "providers[etherscan].base_url: must be an http(s) URL, got 'ftp://api.etherscan.io'",
        "providers[etherscan].auth.env[0]: invalid env var name 'etherscan_key'",
        "providers[etherscan].auth.name: required for auth type 'query'",
        "providers[etherscan].endpoints[gas_oracle].method: invalid value 'PUT' (one of: GET, POST)",
        "providers[etherscan].endpoints[gas_oracle].error_rules[0].outcome: invalid outcome 'stale' (one of: auth_error, bad_payload, client_error, rate_limited, server_error, success)",
        "providers[etherscan].endpoints[gas_oracle].freshness.max_age: required field is missing",
        "providers[etherscan].name: duplicate provider name 'etherscan' (providers[1] repeats providers[0])",
        "providers[etherscan].endpoints[gas].timeout: timeout (120s) is longer than the interval (60s)",
    ],
    # Skipped silently before: a provider or endpoint with a null or empty required field.
    "invalid-dropped-entries.yml": [
        "providers[coingecko].base_url: must be an http(s) URL, got ''",
        "providers[binance].category: invalid value null (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)",
        "providers[binance].endpoints[0].name: must be a string, got null",
        "providers[2].name: must be a string, got null",
        "providers[2].base_url: must be an http(s) URL, got null",
    ],
    # Accepted before, then crashing the prober or the scheduler (or leaking a password into a label).
    "invalid-runtime-crashes.yml": [
        "providers[acme].base_url: must not carry user:password@ (base_url is a metric label): put credentials in auth",
        "providers[acme].endpoints[ticker].path: must be empty or start with / (it is appended to base_url), got 'no-slash'",
        "providers[acme].endpoints[ticker].headers.X-Trace: must not contain line breaks or control characters, got 'a\\r\\nb'",
        "providers[acme].endpoints[ticker].interval: must be at most 7d, got '99999999999999999999d'",
        "providers[acme].endpoints[ticker].values[0].scale: must be a finite positive number, got nan",
        "providers[acme].endpoints[ticker].values[1].scale: must be a finite positive number, got inf",
        "providers[other].base_url: invalid port in 'https://api.other.test:99999' (1 to 65535)",
        "providers[other].timeout: must be at most 7d, got '8d'",
    ],
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_gives_exact_errors(name: str) -> None:
    path = DATA / name
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert err.value.errors == [f"{path}: {line}" for line in INVALID[name]]


def test_every_invalid_file_is_in_the_table() -> None:
    assert sorted(p.name for p in DATA.glob("invalid-*.yml")) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_check_config_exits_nonzero_with_one_line_per_mistake(name: str) -> None:
    path = DATA / name
    proc = subprocess.run([sys.executable, "-m", "exporter", "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"error: {path}: {line}" for line in INVALID[name]] + [f"{len(INVALID[name])} error(s)"]


def test_check_config_accepts_shipped_registry() -> None:
    proc = subprocess.run([sys.executable, "-m", "exporter", "check-config"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert err.value.errors == [f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"]


def _minimal(**endpoint: object) -> dict:
    return {
        "defaults": {"interval": "1m", "timeout": "5s", "jitter": "10%"},
        "providers": [
            {
                "name": "etherscan",
                "category": "explorers",
                "base_url": "https://api.etherscan.io/v2/api/",
                "auth": {"type": "query", "name": "apikey", "env": ["ETHERSCAN_API_KEY_1", "ETHERSCAN_API_KEY_2"]},
                "interval": "5m",
                "endpoints": [{"name": "gas_oracle", **endpoint}],
            }
        ],
    }


def test_defaults_are_overridden_per_provider_and_endpoint() -> None:
    config = parse_config(_minimal(timeout="2s"), env={})
    ep = config.providers[0].endpoints[0]
    assert (ep.interval, ep.timeout, ep.jitter) == (300.0, 2.0, 30.0)
    assert config.providers[0].base_url == "https://api.etherscan.io/v2/api"


def test_keys_come_from_env_and_files_in_order(tmp_path: Path) -> None:
    secret_file = tmp_path / "key2"
    secret_file.write_text("second-key-value\n")
    config = parse_config(_minimal(), env={"ETHERSCAN_API_KEY_1": "first-key-value", "ETHERSCAN_API_KEY_2_FILE": str(secret_file)})
    auth = config.providers[0].auth
    assert auth.type is AuthType.QUERY
    assert [(k.env, k.value) for k in auth.keys] == [("ETHERSCAN_API_KEY_1", "first-key-value"), ("ETHERSCAN_API_KEY_2", "second-key-value")]
    assert "first-key-value" not in repr(config)
    assert config.secrets() == ("first-key-value", "second-key-value")


def test_unset_key_env_is_neither_an_error_nor_a_warning() -> None:
    # The file loads with no key set; what that means (disabled, or probed anyway) is the
    # selection's to say (tests/unit/test_selection.py).
    config = parse_config(_minimal(), env={})
    assert config.warnings == ()
    assert config.providers[0].auth.env and not config.providers[0].auth.keys


def test_rules_and_values_are_compiled() -> None:
    config = parse_config(
        _minimal(
            error_rules=[{"when": "status == '0' && contains(result, 'rate limit')", "outcome": "rate_limited"}],
            values=[{"name": "gas_price_gwei", "path": "result.ProposeGasPrice"}],
            freshness={"path": "ts", "max_age": "2m", "unit": "ms"},
            status_outcomes={430: "rate_limited"},
        ),
        env={},
    )
    ep = config.providers[0].endpoints[0]
    assert ep.error_rules[0].outcome is Outcome.RATE_LIMITED
    assert ep.error_rules[0].when.search({"status": "0", "result": "Max rate limit reached"}) is True
    assert ep.values[0].path.search({"result": {"ProposeGasPrice": "12"}}) == "12"
    assert ep.freshness is not None and ep.freshness.max_age == 120
    assert ep.status_outcomes == {430: Outcome.RATE_LIMITED}


def test_provider_level_rules_apply_after_the_endpoint_rules() -> None:
    data = _minimal(error_rules=[{"when": "status == '2'", "outcome": "client_error"}], status_outcomes={418: "client_error"})
    data["providers"][0]["error_rules"] = [{"when": "status == '0'", "outcome": "bad_payload"}]
    data["providers"][0]["status_outcomes"] = {418: "rate_limited", 430: "rate_limited"}
    ep = parse_config(data, env={}).providers[0].endpoints[0]
    assert [r.when.source for r in ep.error_rules] == ["status == '2'", "status == '0'"]
    assert ep.status_outcomes == {418: Outcome.CLIENT_ERROR, 430: Outcome.RATE_LIMITED}


def test_scale_accepts_yaml_exponent_strings() -> None:
    import yaml

    data = yaml.safe_load("""
providers:
  - name: publicnode
    category: rpc_nodes
    base_url: https://ethereum-rpc.publicnode.com
    endpoints:
      - name: gas_price
        values: [{name: gas_price_gwei, path: result, scale: 1e-9}]
""")
    assert parse_config(data, env={}).providers[0].endpoints[0].values[0].scale == 1e-9


def test_duplicate_quota_scope_is_an_error() -> None:
    data = _minimal()
    data["providers"][0]["rate_limit"] = {"headers": [{"scope": "minute", "remaining": "A"}, {"scope": "minute", "remaining": "B"}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    assert err.value.errors == ["<memory>: providers[etherscan].rate_limit.headers[1].scope: duplicate scope 'minute': each quota needs its own"]
