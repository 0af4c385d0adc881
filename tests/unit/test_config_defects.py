"""Defects a fuzzing session found in the old hand-written validator.

Each case was either accepted (check-config said OK, then the entry was dropped, or the
prober or scheduler crashed on it at run time) or crashed the loader with a Python
traceback. Each must now be refused with located error lines. Only the public API is
imported at the top, so that on the old code these tests fail on their assertions.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, load_config, parse_config


def valid() -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "acme",
                "category": "market_data",
                "base_url": "https://api.acme.test",
                "endpoints": [{"name": "ping", "path": "/ping"}],
            }
        ]
    }


def provider(data: dict[str, Any]) -> dict[str, Any]:
    return data["providers"][0]  # type: ignore[no-any-return]


def endpoint(data: dict[str, Any]) -> dict[str, Any]:
    return data["providers"][0]["endpoints"][0]  # type: ignore[no-any-return]


def errors_of(data: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(data, env=env or {})
    return err.value.errors


def test_the_base_file_is_valid() -> None:
    parse_config(valid(), env={})


Mutation = Callable[[dict[str, Any]], object]

# ---------------------------------------------------------------- 1. entries dropped silently

DROPPED: dict[str, tuple[Mutation, str]] = {
    "empty base_url": (
        lambda d: provider(d).update(base_url=""),
        "providers[acme].base_url: must be an http(s) URL, got ''",
    ),
    "null base_url": (
        lambda d: provider(d).update(base_url=None),
        "providers[acme].base_url: must be an http(s) URL, got null",
    ),
    "null category": (
        lambda d: provider(d).update(category=None),
        "providers[acme].category: invalid value null (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)",
    ),
    "null provider name": (
        lambda d: provider(d).update(name=None),
        "providers[0].name: must be a string, got null",
    ),
    "null endpoint name": (
        lambda d: endpoint(d).update(name=None),
        "providers[acme].endpoints[0].name: must be a string, got null",
    ),
    "null providers": (
        lambda d: d.update(providers=None),
        "providers: must be a list, got null",
    ),
}


@pytest.mark.parametrize("case", sorted(DROPPED))
def test_null_or_empty_required_field_is_an_error_not_a_dropped_entry(case: str) -> None:
    mutate, expected = DROPPED[case]
    data = valid()
    mutate(data)
    assert errors_of(data) == [f"<memory>: {expected}"]


# ---------------------------------------------------------------- 2. accepted, then crashing at run time

CRASHING: dict[str, tuple[Mutation, str]] = {
    "CR LF in an endpoint header": (
        lambda d: endpoint(d).update(headers={"X-Trace": "a\r\nInjected: 1"}),
        "providers[acme].endpoints[ping].headers.X-Trace: must not contain line breaks or control characters, got 'a\\r\\nInjected: 1'",
    ),
    "LF in a header name": (
        lambda d: endpoint(d).update(headers={"X-A\nB": "1"}),
        "providers[acme].endpoints[ping].headers.X-A\nB: invalid header name 'X-A\\nB' (letters, digits and !#$%&'*+-.^_`|~)",
    ),
    "LF in the auth prefix (sent as a header)": (
        lambda d: provider(d).update(auth={"type": "header", "name": "Authorization", "prefix": "Bearer\n", "env": "ACME_KEY"}),
        "providers[acme].auth.prefix: must not contain line breaks or control characters, got 'Bearer\\n'",
    ),
    "space in the auth header name": (
        lambda d: provider(d).update(auth={"type": "header", "name": "X Api Key", "env": "ACME_KEY"}),
        "providers[acme].auth.name: invalid header name 'X Api Key' (letters, digits and !#$%&'*+-.^_`|~)",
    ),
    "port above 65535": (
        lambda d: provider(d).update(base_url="https://x:99999"),
        "providers[acme].base_url: invalid port in 'https://x:99999' (1 to 65535)",
    ),
    "port 0": (
        lambda d: provider(d).update(base_url="https://x:0"),
        "providers[acme].base_url: must be an http(s) URL with a host and a port of 1 to 65535, got 'https://x:0'",
    ),
    "port that is not a number": (
        lambda d: provider(d).update(base_url="https://x:http/api"),
        "providers[acme].base_url: invalid port in 'https://x:http/api' (1 to 65535)",
    ),
    "user:pass@ in base_url": (
        lambda d: provider(d).update(base_url="https://user:pass@api.acme.test"),
        "providers[acme].base_url: must not carry user:password@ (base_url is a metric label): put credentials in auth",
    ),
    "path without a leading slash": (
        lambda d: endpoint(d).update(path="no-slash"),
        "providers[acme].endpoints[ping].path: must be empty or start with / (it is appended to base_url), got 'no-slash'",
    ),
    "interval that overflows": (
        lambda d: endpoint(d).update(interval="99999999999999999999d"),
        "providers[acme].endpoints[ping].interval: must be at most 7d, got '99999999999999999999d'",
    ),
    "interval past the bound": (
        lambda d: endpoint(d).update(interval="8d"),
        "providers[acme].endpoints[ping].interval: must be at most 7d, got '8d'",
    ),
    "timeout in defaults past the bound": (
        lambda d: d.update(defaults={"timeout": "1000000d"}),
        "defaults.timeout: must be at most 7d, got '1000000d'",
    ),
    "jitter past the bound": (
        lambda d: endpoint(d).update(jitter="99999999999999999999d"),
        "providers[acme].endpoints[ping].jitter: must be at most 7d, got '99999999999999999999d'",
    ),
    "freshness max_age that overflows": (
        lambda d: endpoint(d).update(freshness={"path": "ts", "max_age": "99999999999999999999d"}),
        "providers[acme].endpoints[ping].freshness.max_age: must be at most 31d, got '99999999999999999999d'",
    ),
    "budget window that overflows": (
        lambda d: provider(d).update(rate_limit={"budget": {"requests": 10, "per": "99999999999999999999d"}}),
        "providers[acme].rate_limit.budget.per: must be at most 31d, got '99999999999999999999d'",
    ),
    "scale .nan": (
        lambda d: endpoint(d).update(values=[{"name": "v", "path": "a", "scale": float("nan")}]),
        "providers[acme].endpoints[ping].values[0].scale: must be a finite positive number, got nan",
    ),
    "scale .inf": (
        lambda d: endpoint(d).update(values=[{"name": "v", "path": "a", "scale": float("inf")}]),
        "providers[acme].endpoints[ping].values[0].scale: must be a finite positive number, got inf",
    ),
    "scale 'nan' as a string": (
        lambda d: endpoint(d).update(values=[{"name": "v", "path": "a", "scale": "nan"}]),
        "providers[acme].endpoints[ping].values[0].scale: must be a finite positive number, got 'nan'",
    ),
    "json body nested deeper than orjson writes": (
        lambda d: endpoint(d).update(method="POST", json=_nested(300)),
        "providers[acme].endpoints[ping].json: must be a JSON body nested at most 32 levels deep",
    ),
    "json body that is not JSON": (
        lambda d: endpoint(d).update(method="POST", json={"ids": {1, 2}}),
        "providers[acme].endpoints[ping].json: must be JSON, got a set",
    ),
}


def _nested(depth: int) -> Any:
    out: Any = 1
    for _ in range(depth):
        out = [out]
    return out


@pytest.mark.parametrize("case", sorted(CRASHING))
def test_value_that_would_crash_at_run_time_is_refused(case: str) -> None:
    mutate, expected = CRASHING[case]
    data = valid()
    mutate(data)
    assert errors_of(data) == [f"<memory>: {expected}"]


def test_api_key_with_a_line_break_is_refused_without_showing_it() -> None:
    data = valid()
    provider(data)["auth"] = {"type": "header", "name": "X-Api-Key", "env": ["ACME_KEY_1", "ACME_KEY_2"]}
    lines = errors_of(data, env={"ACME_KEY_1": "good", "ACME_KEY_2": "sec\nret"})
    assert lines == ["<memory>: providers[acme].auth.env[1]: the value of ACME_KEY_2 holds a line break or another control character"]


def test_userinfo_is_not_echoed_in_other_base_url_errors() -> None:
    data = valid()
    provider(data)["base_url"] = "ftp://user:hunter2@api.acme.test"
    assert errors_of(data) == ["<memory>: providers[acme].base_url: must be an http(s) URL, got 'ftp://api.acme.test'"]


def test_timeout_stays_at_most_the_interval() -> None:
    data = valid()
    endpoint(data).update(interval="7d", timeout="7d", jitter="0s")
    parse_config(data, env={})
    endpoint(data)["timeout"] = "7d1s"
    assert errors_of(data) == ["<memory>: providers[acme].endpoints[ping].timeout: must be at most 7d, got '7d1s'"]


# ---------------------------------------------------------------- 3. loading


def _load_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    return err.value.errors


def test_non_utf8_file_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes("providers:\n  - name: café\n".encode("latin-1"))
    assert _load_errors(path) == [f"{path}: line 2, column 14: not UTF-8 (byte 0xe9); save the file as UTF-8"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("providers: " + "[" * 5000, "line 1, column 75"),
        ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 2000)), "line 64, column 127"),
    ],
    ids=["flow", "block"],
)
def test_deeply_nested_file_is_one_located_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "deep.yml"
    path.write_text(text)
    assert _load_errors(path) == [f"{path}: {where}: nested deeper than 64 levels"]


def test_5000_digit_integer_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "bigint.yml"
    path.write_text("defaults:\n  max_body_bytes: " + "9" * 5000 + "\n")
    assert _load_errors(path) == [f"{path}: line 2, column 19: integer of 5000 digits (at most 100)"]


def test_impossible_date_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "date.yml"
    path.write_text("providers:\n  - description: 2024-13-45\n")
    assert _load_errors(path) == [f"{path}: line 2, column 18: invalid date '2024-13-45': month must be in 1..12"]


def test_control_character_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "nul.yml"
    path.write_text("providers: [\x00]\n")
    assert _load_errors(path) == [f"{path}: line 1, column 13: special characters are not allowed (character #x0000)"]


def test_file_over_the_size_bound_is_one_line(tmp_path: Path) -> None:
    from exporter.config import MAX_FILE_BYTES

    path = tmp_path / "big.yml"
    path.write_text("providers:\n" + "  - x\n" * (MAX_FILE_BYTES // 6 + 1))
    assert _load_errors(path) == [f"{path}: larger than 4 MiB; is this the providers file?"]


def test_error_lines_are_capped(tmp_path: Path) -> None:
    from exporter.config import MAX_ERRORS

    path = tmp_path / "many.yml"
    path.write_text("providers:\n" + "  - x\n" * 1000)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    lines = err.value.errors
    assert len(lines) == MAX_ERRORS + 1
    assert lines[0] == f"{path}: providers[0]: must be a mapping, got a string"
    assert lines[-1] == f"{path}: ... and {1000 - MAX_ERRORS} more errors (checks across fields skipped)"
    assert err.value.total == 1000


def test_cap_counts_checks_across_fields_too() -> None:
    from exporter.config import MAX_ERRORS

    data = valid()
    provider(data)["endpoints"] = [{"name": f"e{i}", "timeout": "2m"} for i in range(MAX_ERRORS + 50)]
    lines = errors_of(data)
    assert len(lines) == MAX_ERRORS + 1
    assert lines[-1] == "<memory>: ... and 50 more errors"


@pytest.mark.parametrize(
    "text",
    [
        "providers: " + "[" * 5000,
        "providers:\n  - name: " + "9" * 5000,
        "providers:\n" + "  - x\n" * 2000,
    ],
    ids=["deep", "bigint", "many-errors"],
)
def test_check_config_never_prints_a_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "exporter", "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) <= 102  # at most MAX_ERRORS lines, the "... and N more" line, the count
