"""Mutated providers files through `check-config`'s loader and through a reload: never a
traceback, never an entry dropped without an error, never a half-applied reload.

A fixed seed and budget (see conftest.py): the same cases on every run, in CI too. Each
case is one drawn seed driving `random.Random` mutations (cheap to generate; a failure
names its seed). The base document is small but uses every part of the schema, so each
case parses fast."""

from __future__ import annotations

import copy
import functools
import random
import textwrap
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given

from exporter.app import Exporter
from exporter.config import MAX_ERRORS, Config, ConfigError, load_config, parse_yaml

from .conftest import SEEDS, fuzz_settings

BASE = textwrap.dedent(
    """\
    defaults: {interval: 1m, timeout: 10s, jitter: 10%, expect_status: [200], circuit_breaker: {failure_threshold: 5, reset_timeout: 2m}}
    providers:
      - name: etherscan
        category: explorers
        description: Etherscan V2
        base_url: https://api.etherscan.io/v2/api
        auth: {type: query, name: apikey, env: [ETHERSCAN_API_KEY_1, ETHERSCAN_API_KEY_2]}
        rate_limit:
          headers: [{scope: minute, limit: X-RateLimit-Limit, remaining: X-RateLimit-Remaining, reset: X-RateLimit-Reset}]
          budget: {requests: 5000, per: 1d}
        error_rules:
          - {when: "status == '0' && contains(to_string(result), 'rate limit')", outcome: rate_limited, message: result}
        endpoints:
          - name: gas_oracle
            params: {chainid: "1", module: gastracker, action: gasoracle}
            freshness: {path: result.LastBlock, unit: s, max_age: 5m}
            values: [{name: gas_price_gwei, path: result.ProposeGasPrice, scale: 1}]
          - name: block
            method: POST
            json: {jsonrpc: "2.0", method: eth_blockNumber, params: [], id: 1}
            status_outcomes: {418: rate_limited}
            assertions: ["result != null"]
      - name: binance
        category: exchanges
        base_url: https://api.binance.com
        interval: 30s
        rate_limit:
          headers: [{scope: weight_1m, used: X-MBX-USED-WEIGHT-1M, limit_value: 6000, window: 1m}]
        endpoints:
          - {name: ping, path: /api/v3/ping, timeout: 5s}
          - name: btc_ticker
            path: /api/v3/ticker/price
            headers: {Accept: application/json}
            params: {symbol: BTCUSDT}
            values: [{name: btc_usd, path: price}]
      - name: mempool_space
        category: explorers
        base_url: https://mempool.space/api
        endpoints:
          - {name: tip_height, path: /blocks/tip/height, format: text, values: [{name: block_height, path: "@"}]}
    """
)
ENV = {"ETHERSCAN_API_KEY_1": "fuzz-key-0001", "ETHERSCAN_API_KEY_2": "fuzz-key-0002"}

# What breaks YAML, and what breaks the schema, inserted as text.
TOKENS = [
    ":", ": ", "- ", "[", "]", "{", "}", ",", "'", '"', "#", "&a ", "*a", "!!python/object:os.system ", "!!binary ", "~",
    "null", "true", "-1", "0", ".nan", ".inf", "1e400", "9" * 60, "\t", "\n", "\n  ", "    ", "\x00", "\x85", "\ufeff",
    "é", "\U0001f600", "%", "5x", "1h30", "? ", "|\n", ">\n", "<<: *a\n", "---\n", "...\n", "\r\n", "\\", "interval: 1s",
    "name: null", "category: nope", "endpoints: []", "base_url: ''", "json: " + "[" * 40, "@",
]  # fmt: skip


def mutate_text(base: str, rng: random.Random) -> str:
    """A handful of text edits: deletions, duplications, insertions of TOKENS, line swaps."""
    text = base
    for _ in range(rng.randint(1, 4)):
        if not text:
            break
        op = rng.choice(["delete", "duplicate", "insert", "swap_lines", "truncate"])
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(1, 40))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif op == "truncate":
            text = text[:i]
        else:
            lines = text.split("\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


VALUES: list[Any] = [
    None, True, False, -1, 0, 1, 10**30, -(10**30), 0.5, -0.0, float("nan"), float("inf"), 1e308, "", " ", "x", "1s", "0s",
    "99999999999999999999d", "10%", "200%", "GET", "PUT", "http://x:99999", "https://u:p@x.test", "https://x.test?q=1",
    "no-slash", "a\r\nb", "\x00", "é", "\U0001f600", "[[[", "{key}", "Bearer ", [], [1, 2], [None], {}, {"a": 1}, {"": None},
]  # fmt: skip


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate_structure(base: str, rng: random.Random) -> str:
    """A few structural edits on the parsed document: a value replaced, a key dropped,
    an unknown key added; dumped back to YAML."""
    doc = copy.deepcopy(_parsed(base))
    for _ in range(rng.randint(1, 3)):
        if not (candidates := paths(doc)):
            break  # everything dropped already
        where = rng.choice(candidates)
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        op = rng.choice(["replace", "drop", "add"])
        if op == "replace":
            parent[where[-1]] = rng.choice(VALUES)
        elif op == "drop" and isinstance(parent, dict):
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["intervall", "nam", "x", "endpoint", "auth"])] = rng.choice(VALUES)
    # libyaml's dumper: five times faster, and the loader under test is the exporter's own.
    return yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True)


@functools.cache
def _parsed(base: str) -> Any:
    return yaml.safe_load(base)


def entries(text: str) -> list[int] | None:
    """Endpoints per provider entry as written in the file, or None if not countable. Read
    with the exporter's own YAML reader: libyaml and PyYAML disagree on some edge cases
    (a tab after `name:`), and the question is what the exporter saw."""
    try:
        doc = parse_yaml(text)
        return [len(p["endpoints"]) for p in doc["providers"]]
    except Exception:  # noqa: BLE001 - a file the checker accepted may still not be countable this way
        return None


def check_one(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        config = load_config(path, ENV)
    except ConfigError as e:
        refused = e
    else:
        refused = None
    if refused is not None:
        assert 1 <= len(refused.errors) <= MAX_ERRORS + 1, len(refused.errors)
        assert refused.total >= len(refused.errors) - 1
        for line in refused.errors:
            assert line.startswith(f"{path}:"), line
            assert "\n" not in line and "Traceback" not in line, line
        return
    # Accepted: every provider and endpoint written in the file is in the config.
    written = entries(text)
    assert written is not None, "accepted a file whose providers cannot be counted"
    assert [len(p.endpoints) for p in config.providers] == written


def test_the_base_document_is_valid(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE), ENV)
    assert [p.name for p in config.providers] == ["etherscan", "binance", "mempool_space"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return path


@fuzz_settings(max_examples=2000)
@given(seed=SEEDS)
def test_text_mutations_never_crash_or_drop_entries(tmp_path_factory: Any, seed: int) -> None:
    check_one(tmp_path_factory.getbasetemp() / "text.yaml", mutate_text(BASE, random.Random(seed)))


@fuzz_settings(max_examples=2000)
@given(seed=SEEDS)
def test_structural_mutations_never_crash_or_drop_entries(tmp_path_factory: Any, seed: int) -> None:
    check_one(tmp_path_factory.getbasetemp() / "structure.yaml", mutate_structure(BASE, random.Random(seed)))


@fuzz_settings(max_examples=500)
@given(seed=SEEDS)
def test_reload_of_a_mutated_file_is_all_or_nothing(tmp_path_factory: Any, seed: int) -> None:
    """What SIGHUP and POST /-/reload run: errors keep the running config untouched."""
    path = tmp_path_factory.getbasetemp() / "reload.yaml"
    path.write_text(BASE)
    exporter = Exporter(lambda: load_config(path, ENV), process_metrics=False)
    before: Config = exporter.config
    rng = random.Random(seed)
    mutated = mutate_text(BASE, rng) if rng.random() < 0.5 else mutate_structure(BASE, rng)
    path.write_text(mutated, encoding="utf-8", errors="surrogateescape")
    errors = exporter.reload()
    assert isinstance(errors, list)
    if errors:
        assert exporter.config is before
        assert exporter.state.config_reload_ok is False
        assert set(exporter.state.providers) == {p.name for p in before.providers}
    else:
        assert exporter.state.config_reload_ok is True
        assert set(exporter.state.providers) == {p.name for p in exporter.config.providers}
