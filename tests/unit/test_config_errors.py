"""How providers.yaml mistakes are reported: every one in a run, one line each, located
by provider and endpoint name, with a did-you-mean for typos, in the exporter's words
(none of pydantic's), in the order they appear in the file."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from exporter.config import DEFAULT_FILE, ConfigError, load_config, parse_config
from exporter.model import ProbeKind


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(yaml.safe_load(text), "f.yml", env={})
    return [line.removeprefix("f.yml: ") for line in err.value.errors]


def test_every_mistake_in_one_run_including_checks_across_fields() -> None:
    # Field errors (pydantic's part) and cross-field errors (the compile step's part),
    # spread over providers that are themselves broken, all come out in one run.
    assert errors_of("""
defaults: {interval: 10 seconds}
providers:
  - name: broken
    category: explorer
    base_url: https://a.test
    endpoints:
      - {name: slow, interval: 1m, timeout: 2m}
      - {name: body, json: {a: 1}}
      - {name: typo, intervall: 1m}
  - name: fine
    category: news
    base_url: https://b.test
    auth: {type: query, env: KEY}
    endpoints:
      - {name: a, jitter: 1m, interval: 30s}
      - {name: a}
""") == [
        "defaults.interval: invalid duration '10 seconds' (use e.g. 30s, 5m, 1h)",
        "providers[broken].category: invalid value 'explorer' (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)",
        "providers[broken].endpoints[slow].timeout: timeout (120s) is longer than the interval (60s)",
        "providers[broken].endpoints[body].json: a JSON body needs method: POST",
        "providers[broken].endpoints[typo].intervall: unknown field (did you mean 'interval'?)",
        "providers[fine].auth.name: required for auth type 'query'",
        "providers[fine].endpoints[a].jitter: jitter (60s) must be shorter than the interval (30s)",
        "providers[fine].endpoints[a].name: duplicate endpoint name 'a' (endpoints[1] repeats endpoints[0])",
    ]


def test_no_check_across_fields_on_a_value_that_was_refused() -> None:
    # The provider's interval is invalid: the endpoint's timeout cannot be compared with
    # it, so only the real mistake is reported, not a comparison with the 60s fallback.
    assert errors_of("""
providers:
  - name: p
    category: news
    base_url: https://a.test
    interval: 5x
    auth: {type: header, name: X-Key, env: [bad_name]}
    endpoints: [{name: e, timeout: 2m}]
""") == [
        "providers[p].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)",
        "providers[p].auth.env[0]: invalid env var name 'bad_name'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("provders: []", "provders: unknown field (did you mean 'providers'?)\nproviders: required field is missing"),
        ("defaults: {timout: 5s}\nproviders: []", "defaults.timout: unknown field (did you mean 'timeout'?)"),
        (
            "defaults: {circuit_breaker: {failure_treshold: 3}}\nproviders: []",
            "defaults.circuit_breaker.failure_treshold: unknown field (did you mean 'failure_threshold'?)",
        ),
        (
            "providers: [{name: p, category: news, base_url: 'https://a.test', endpoint: [{name: e}]}]",
            "providers[p].endpoint: unknown field (did you mean 'endpoints'?)\nproviders[p].endpoints: required field is missing",
        ),
        (
            "providers: [{name: p, category: news, base_url: 'https://a.test', endpoints: [{name: e}], auth: {type: none, optinal: true}}]",
            "providers[p].auth.optinal: unknown field (did you mean 'optional'?)",
        ),
        (
            "providers: [{name: p, category: news, base_url: 'https://a.test', endpoints: [{name: e, freshness: {path: ts, max_age: 1m, units: s}}]}]",
            "providers[p].endpoints[e].freshness.units: unknown field (did you mean 'unit'?)",
        ),
        (
            "providers: [{name: p, category: news, base_url: 'https://a.test', endpoints: [{name: e, jsonn: {}}]}]",
            "providers[p].endpoints[e].jsonn: unknown field (did you mean 'json'?)",
        ),
        (
            "providers: [{name: p, category: news, base_url: 'https://a.test', endpoints: [{name: e, zzz: 1}]}]",
            "providers[p].endpoints[e].zzz: unknown field",
        ),
    ],
)
def test_unknown_keys_get_a_did_you_mean(text: str, expected: str) -> None:
    assert errors_of(text) == expected.splitlines()


def test_located_by_name_and_by_index_only_without_a_usable_name() -> None:
    assert errors_of("""
providers:
  - name: named
    category: news
    base_url: https://a.test
    endpoints:
      - {name: ok, interval: 5x}
      - {path: /no-name, interval: 5x}
  - category: news
    base_url: https://b.test
    endpoints: [{name: e, interval: 5x}]
""") == [
        "providers[named].endpoints[ok].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)",
        "providers[named].endpoints[1].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)",
        "providers[named].endpoints[1].name: required field is missing",
        "providers[1].endpoints[e].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)",
        "providers[1].name: required field is missing",
    ]


BAD_VALUES: list[dict[Any, Any]] = [
    {"interval": 60},
    {"interval": [1]},
    {"timeout": {"a": 1}},
    {"jitter": "x%"},
    {"jitter": True},
    {"max_body_bytes": "1"},
    {"max_body_bytes": 1.5},
    {"max_body_bytes": -1},
    {"max_body_bytes": True},
    {"fresh_connection": "yes"},
    {"expect_status": "200"},
    {"expect_status": [True]},
    {"expect_status": []},
    {"method": "PUT"},
    {"method": 1},
    {"format": None, "kind": "feed"},
    {"params": [1]},
    {"params": {"a": None}},
    {"params": {"a": [1]}},
    {"headers": "x"},
    {"json": float("nan"), "method": "POST"},
    {"status_outcomes": [1]},
    {"status_outcomes": {"x": "success"}},
    {"status_outcomes": {200: "stale"}},
    {"assertions": "a"},
    {"assertions": [""]},
    {"assertions": [1]},
    {"assertions": ["a[["]},
    {"error_rules": [{"when": "a"}]},
    {"error_rules": ["a"]},
    {"freshness": {"path": "a", "max_age": "1m", "unit": "hours"}},
    {"freshness": "a"},
    {"values": [{"name": "A", "path": "a"}]},
    {"values": [{"name": "a", "path": "a", "scale": "x"}]},
    {"values": [{"name": "a", "path": "a", "scale": -1}]},
    {"name": 5},
    {"name": ["a"]},
    {"path": 5},
    {"path": "/a b"},
    {1: 2},
    {"kind": 5},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=[str(sorted(map(str, b))) + str(i) for i, b in enumerate(BAD_VALUES)])
def test_messages_are_in_our_words(bad: dict[Any, Any]) -> None:
    data = {"providers": [{"name": "p", "category": "news", "base_url": "https://a.test", "endpoints": [{"name": "e", **bad}]}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    for line in err.value.errors:
        assert line.startswith("<memory>: providers[p].endpoints["), line
        assert "\n" not in line
        for noise in ("pydantic", "Value error", "Input should", "input_value", "input_type", "For further information", "type="):
            assert noise not in line, line


def test_null_for_an_optional_key_means_absent() -> None:
    config = parse_config(
        yaml.safe_load("""
defaults: {interval: 2m}
providers:
  - name: p
    category: news
    base_url: https://a.test
    auth:
    interval:
    endpoints: [{name: e, method: null, freshness: null, values: null, timeout: null}]
"""),
        env={},
    )
    ep = config.providers[0].endpoints[0]
    assert (ep.interval, ep.timeout, ep.freshness, ep.values) == (120.0, 10.0, None, ())
    assert config.providers[0].auth.type.value == "none"


def test_kind_defaults_to_http_and_is_a_closed_set() -> None:
    base = "providers: [{name: p, category: news, base_url: 'https://a.test', endpoints: [{name: e%s}]}]"
    assert parse_config(yaml.safe_load(base % ""), env={}).providers[0].endpoints[0].kind is ProbeKind.HTTP
    assert parse_config(yaml.safe_load(base % ", kind: http"), env={}).providers[0].endpoints[0].kind is ProbeKind.HTTP
    assert errors_of(base % ", kind: jsonrpc") == ["providers[p].endpoints[e].kind: invalid value 'jsonrpc' (one of: http, chain_head)"]


def test_libyaml_and_the_python_loader_read_the_same_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (libyaml) and the fallback (PyYAML's Python loader, also used where
    libyaml is missing) build the same config from the shipped registry."""
    fast = load_config(DEFAULT_FILE, {})
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    slow = load_config(DEFAULT_FILE, {})
    assert fast == slow
