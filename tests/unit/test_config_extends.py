"""`extends:`: a user's file over the shipped registry (or any other file), merged one
level down, with every mistake reported in the file it is in."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from exporter.config import DEFAULT_FILE, MAX_EXTENDS, ConfigError, load_config, parse_config
from exporter.model import Category
from exporter.selection import select

SCHEMA = Path(__file__).resolve().parents[2] / "providers.schema.json"
BASE = """\
defaults: {interval: 1m, timeout: 10s}
providers:
  - name: alpha
    category: exchanges
    base_url: https://alpha.test
    interval: 5m
    endpoints:
      - {name: ping, path: /ping}
      - {name: time, path: /time}
  - name: beta
    category: news
    base_url: https://beta.test
    auth: {type: query, name: key, env: BETA_KEY}
    endpoints:
      - {name: latest}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    return err.value.errors


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path / "base.yml", BASE)


def test_a_provider_named_as_in_the_base_is_overridden_key_by_key_and_new_ones_are_added(tmp_path: Path, base: Path) -> None:
    user = write(
        tmp_path / "user.yml",
        """\
        extends: base.yml
        defaults: {timeout: 5s}
        providers:
          - {name: alpha, interval: 2m}
          - {name: beta, enabled: false}
          - name: gamma
            category: onchain
            base_url: https://gamma.test
            endpoints: [{name: head}]
        """,
    )
    config = load_config(user, env={})
    alpha, beta, gamma = config.providers
    assert [ep.name for ep in alpha.endpoints] == ["ping", "time"]  # kept from the base
    assert {(ep.interval, ep.timeout) for ep in alpha.endpoints} == {(120.0, 5.0)}  # the user's interval and default timeout
    assert (beta.enabled, beta.auth.env, beta.base_url) == (False, ("BETA_KEY",), "https://beta.test")
    assert (gamma.name, gamma.category, gamma.endpoints[0].interval) == ("gamma", Category.ONCHAIN, 60.0)  # the base's defaults apply
    assert config.source == str(user) and config.files == (str(base), str(user))


def test_a_list_is_replaced_whole_and_null_takes_the_bases_value_away(tmp_path: Path, base: Path) -> None:
    user = write(
        tmp_path / "user.yml",
        """\
        extends: base.yml
        providers:
          - name: alpha
            interval:
            endpoints: [{name: status, path: /status}]
        """,
    )
    (alpha, _beta) = load_config(user, env={}).providers
    assert [(ep.name, ep.interval) for ep in alpha.endpoints] == [("status", 60.0)]  # the base's 5m is gone: defaults apply


def test_extends_shipped_needs_no_providers_and_selects_without_editing_the_shipped_file(tmp_path: Path) -> None:
    user = write(
        tmp_path / "mine.yml",
        """\
        extends: shipped
        select: {categories: [exchanges], providers: [etherscan]}
        providers:
          - {name: binance, enabled: false}
        """,
    )
    config = select(load_config(user, env={}))
    shipped = load_config(env={})
    exchanges = [p.name for p in shipped.providers if p.category is Category.EXCHANGES]
    assert [p.name for p in config.providers] == [n for n in exchanges if n != "binance"]
    assert {d.name: d.reason.value for d in config.disabled} == {"etherscan": "no_key", "binance": "config"}
    assert config.files == (str(DEFAULT_FILE), str(user))


def test_a_relative_path_is_read_from_the_extending_files_directory(tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    write(sub / "middle.yml", "extends: ../base.yml\nproviders:\n  - {name: beta, interval: 30s}\n")
    user = write(sub / "user.yml", "extends: middle.yml\nproviders:\n  - {name: alpha, enabled: false}\n")
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(user, env={})
    assert [(p.name, p.enabled, p.endpoints[0].interval) for p in config.providers] == [("alpha", False, 300.0), ("beta", None, 30.0)]
    assert config.files == (str(sub / "../base.yml"), str(sub / "middle.yml"), str(user))


def test_each_mistake_is_reported_in_the_file_it_is_in(tmp_path: Path) -> None:
    write(
        tmp_path / "base.yml",
        """\
        providers:
          - name: alpha
            category: exchanges
            base_url: https://alpha.test
            endpoints: [{name: ping, interval: 10 minutes}]
          - name: beta
            category: news
            base_url: https://beta.test
            endpoints: [{name: latest}]
        """,
    )
    user = write(
        tmp_path / "user.yml",
        """\
        extends: base.yml
        select: {providers: [alpha, gamma, delta]}
        providers:
          - {name: beta, intervall: 1m, enabled: maybe}
          - {name: gamma, category: onchain, endpoints: [{name: head}]}
        """,
    )
    assert errors_of(user) == [
        f"{tmp_path}/base.yml: providers[alpha].endpoints[ping].interval: invalid duration '10 minutes' (use e.g. 30s, 5m, 1h)",
        f"{user}: providers[beta].intervall: unknown field (did you mean 'interval'?)",
        f"{user}: providers[beta].enabled: must be true or false, got 'maybe'",
        f"{user}: providers[gamma].base_url: required field is missing",
        f"{user}: select.providers[2]: unknown provider 'delta' (did you mean 'beta'?); known: alpha, beta, gamma",
    ]


def test_a_name_repeated_in_the_extending_file_is_a_duplicate(tmp_path: Path, base: Path) -> None:
    # Indices in that file's own list, as for a file that extends nothing; the repeated
    # entry is not merged, so nothing else of it is reported.
    user = write(
        tmp_path / "user.yml",
        "extends: base.yml\nproviders:\n  - {name: beta, interval: 1m}\n  - {name: new, category: news}\n  - {name: beta, interval: 2m}\n  - {name: new}\n",
    )
    assert errors_of(user) == [
        f"{user}: providers[beta].name: duplicate provider name 'beta' (providers[2] repeats providers[0])",
        f"{user}: providers[new].name: duplicate provider name 'new' (providers[3] repeats providers[1])",
        f"{user}: providers[new].base_url: required field is missing",
        f"{user}: providers[new].endpoints: required field is missing",
    ]


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"user.yml": "extends: [base.yml]\n"}, "{d}/user.yml: extends: must be 'shipped' or the path of a providers file, got a list"),
        ({"user.yml": "extends: ''\n"}, "{d}/user.yml: extends: must be 'shipped' or the path of a providers file, got ''"),
        ({"user.yml": "extends: nowhere.yml\n"}, "{d}/user.yml: extends: 'nowhere.yml': no such file ({d}/nowhere.yml)"),
        ({"user.yml": "extends: user.yml\n"}, "{d}/user.yml: extends: 'user.yml' goes round in a loop ({d}/user.yml -> {d}/user.yml)"),
        (
            {"user.yml": "extends: a.yml\n", "a.yml": "extends: user.yml\nproviders: []\n"},
            "{d}/a.yml: extends: 'user.yml' goes round in a loop ({d}/user.yml -> {d}/a.yml -> {d}/user.yml)",
        ),
        (
            {"user.yml": "extends: base.yml\n", "base.yml": "providers: [\n"},
            "{d}/base.yml: line 2, column 1: expected the node content, but found '<stream end>'",
        ),
        (
            {"user.yml": "extends: base.yml\n", "base.yml": "- a\n"},
            "{d}/base.yml: the file must be a mapping with a 'providers' list, got a list (extended by {d}/user.yml)",
        ),
    ],
)
def test_what_extends_names_must_be_a_readable_file_that_does_not_loop(tmp_path: Path, files: dict[str, str], error: str) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    assert errors_of(tmp_path / "user.yml") == [error.format(d=tmp_path)]


def test_a_chain_is_bounded(tmp_path: Path, base: Path) -> None:
    previous = "base.yml"
    for i in range(MAX_EXTENDS):
        previous = write(tmp_path / f"f{i}.yml", f"extends: {previous}\n").name
    assert load_config(tmp_path / f"f{MAX_EXTENDS - 2}.yml", env={}).providers  # MAX_EXTENDS files in all
    assert errors_of(tmp_path / previous) == [f"{tmp_path}/f0.yml: extends: more than {MAX_EXTENDS} files extend each other; is this a loop?"]


def test_parse_config_resolves_extends_too() -> None:
    config = parse_config({"extends": "shipped", "providers": [{"name": "binance", "enabled": False}]}, "mem", env={})
    assert config.provider("binance").enabled is False and len(config.providers) == len(load_config(env={}).providers)


def test_the_schema_lets_an_extending_file_name_only_what_it_changes() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    partial = {"extends": "shipped", "select": {"categories": ["news"]}, "providers": [{"name": "binance", "enabled": False}]}
    assert validator.is_valid(partial)
    assert validator.is_valid({"extends": "shipped"})
    # Without extends, every provider is complete and the list is there.
    errors = {(tuple(e.instance_path), e.message) for e in validator.iter_errors({"providers": [{"name": "binance", "enabled": False}]})}
    assert any(path == ("providers", 0) and "category" in message for path, message in errors), errors
    assert not validator.is_valid({"select": {"providers": ["binance"]}})
    assert not validator.is_valid(yaml.safe_load("extends: shipped\nproviders: [{name: binance, enabled: 'no'}]"))


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    section = doc[doc.index("## Extending the shipped registry") :]
    example = section[section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml\n") + 1)]
    config = select(load_config(write(tmp_path / "mine.yaml", example), env={}))
    assert config.disabled_provider("binance") is not None and config.provider("my_node").category is Category.RPC_NODES
    coingecko = config.provider("coingecko")
    assert coingecko.budget is not None and coingecko.budget.requests == 1000 and coingecko.auth.optional  # the rest is the shipped one
