"""exporter.selection.select: which providers run, given the file, the command line and
the keys in the environment. Pure: a table of cases, no exporter."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.config import Config, ConfigError, load_config, parse_config
from exporter.model import DisabledReason
from exporter.selection import Choice, select, why

ENV_OF = {"paid": ["PAID_KEY_1", "PAID_KEY_2"], "freemium": ["FREEMIUM_KEY"], "news_paid": ["NEWS_KEY"]}


def registry(**extra: dict[str, Any]) -> dict[str, Any]:
    """Five providers: keyless, one needing a key (two env vars), one with an optional
    key, and two in news (one keyless, one needing a key). `extra` adds keys per provider."""

    def provider(name: str, category: str, auth: dict[str, Any] | None = None) -> dict[str, Any]:
        p: dict[str, Any] = {"name": name, "category": category, "base_url": f"https://{name}.test", "endpoints": [{"name": "ping"}]}
        if auth is not None:
            p["auth"] = auth
        return {**p, **extra.get(name, {})}

    return {
        "providers": [
            provider("free", "exchanges"),
            provider("paid", "explorers", {"type": "query", "name": "apikey", "env": ENV_OF["paid"]}),
            provider("freemium", "market_data", {"type": "header", "name": "x-key", "env": ENV_OF["freemium"], "optional": True}),
            provider("news_free", "news"),
            provider("news_paid", "news", {"type": "header", "name": "x-key", "env": ENV_OF["news_paid"]}),
        ]
    }


def plan(env: dict[str, str] | None = None, choice: Choice | None = None, data: dict[str, Any] | None = None) -> Config:
    return select(parse_config(data or registry(), "f.yml", env=env or {}), choice or Choice())


def running(config: Config) -> list[str]:
    return [p.name for p in config.providers]


def disabled(config: Config) -> dict[str, DisabledReason]:
    return {d.name: d.reason for d in config.disabled}


@pytest.mark.parametrize(
    ("env", "choice", "extra", "runs", "off", "left_out"),
    [
        # No key anywhere: keyless and optional-key providers run, the others are disabled.
        ({}, Choice(), {}, ["free", "freemium", "news_free"], {"paid": "no_key", "news_paid": "no_key"}, []),
        # Any one of a provider's env vars enables it (the second one of a rotation too).
        ({"PAID_KEY_2": "k"}, Choice(), {}, ["free", "paid", "freemium", "news_free"], {"news_paid": "no_key"}, []),
        ({"PAID_KEY_1": "k", "NEWS_KEY": "k"}, Choice(), {}, ["free", "paid", "freemium", "news_free", "news_paid"], {}, []),
        # A blank value is no key.
        ({"PAID_KEY_1": "  "}, Choice(), {}, ["free", "freemium", "news_free"], {"paid": "no_key", "news_paid": "no_key"}, []),
        # enabled: in the file forces either way.
        (
            {},
            Choice(),
            {"paid": {"enabled": True}, "free": {"enabled": False}},
            ["paid", "freemium", "news_free"],
            {"free": "config", "news_paid": "no_key"},
            [],
        ),
        ({"PAID_KEY_1": "k"}, Choice(), {"paid": {"enabled": False}}, ["free", "freemium", "news_free"], {"paid": "config", "news_paid": "no_key"}, []),
        # The command line wins over the file.
        (
            {},
            Choice(enable=("news_paid",), disable=("free",)),
            {"free": {"enabled": True}},
            ["freemium", "news_free", "news_paid"],
            {"free": "flag", "paid": "no_key"},
            [],
        ),
        ({}, Choice(enable=("paid",)), {"paid": {"enabled": False}}, ["free", "paid", "freemium", "news_free"], {"news_paid": "no_key"}, []),
        # Selection by name and by category, either way in; the rest is left out, not disabled.
        ({}, Choice(providers=("free",)), {}, ["free"], {}, ["paid", "freemium", "news_free", "news_paid"]),
        ({}, Choice(categories=("news",)), {}, ["news_free"], {"news_paid": "no_key"}, ["free", "paid", "freemium"]),
        ({}, Choice(providers=("paid",), categories=("news",)), {}, ["news_free"], {"paid": "no_key", "news_paid": "no_key"}, ["free", "freemium"]),
        ({"NEWS_KEY": "k"}, Choice(categories=("news", "exchanges")), {}, ["free", "news_free", "news_paid"], {}, ["paid", "freemium"]),
    ],
)
def test_which_providers_run(
    env: dict[str, str], choice: Choice, extra: dict[str, dict[str, Any]], runs: list[str], off: dict[str, str], left_out: list[str]
) -> None:
    config = plan(env, choice, registry(**extra))
    assert running(config) == runs
    assert disabled(config) == off
    assert list(config.not_selected) == left_out


def test_the_files_select_applies_unless_the_command_line_selects() -> None:
    data = {**registry(), "select": {"categories": ["news"], "providers": ["free"]}}
    by_file = plan(data=data)
    assert running(by_file) == ["free", "news_free"] and disabled(by_file) == {"news_paid": DisabledReason.NO_KEY}
    by_flag = plan(data=data, choice=Choice(providers=("freemium",)))
    assert running(by_flag) == ["freemium"] and not by_flag.disabled


def test_a_provider_forced_on_without_a_key_runs_with_one_warning() -> None:
    config = plan(choice=Choice(enable=("paid",)))
    assert "paid" in running(config)
    assert config.warnings == (
        "providers[paid].auth.env: none of PAID_KEY_1, PAID_KEY_2 is set; --enable probes it anyway, and its probes will fail with auth_error",
    )
    assert plan(data=registry(paid={"enabled": True})).warnings[0].endswith("enabled: true probes it anyway, and its probes will fail with auth_error")


def test_nothing_is_warned_for_a_disabled_provider_nor_for_an_optional_key() -> None:
    assert plan().warnings == ()


@pytest.mark.parametrize(
    ("choice", "errors"),
    [
        (
            Choice(providers=("fre",)),
            ["--providers: unknown provider 'fre' (did you mean 'free'?); known: free, freemium, news_free, news_paid, paid"],
        ),
        (
            Choice(categories=("newz", "dex")),
            [
                "--categories: unknown category 'newz' (did you mean 'news'?); known: exchanges, explorers, market_data, news, onchain, rpc_nodes, sentiment",
                "--categories: unknown category 'dex'; known: exchanges, explorers, market_data, news, onchain, rpc_nodes, sentiment",
            ],
        ),
        (Choice(enable=("piad",)), ["--enable: unknown provider 'piad' (did you mean 'paid'?); known: free, freemium, news_free, news_paid, paid"]),
        (Choice(categories=("news",), disable=("free",)), ["--disable: 'free' is not among the selected providers; selected: news_free, news_paid"]),
        (Choice(enable=("paid",), disable=("paid",)), ["--enable and --disable both name 'paid': pick one"]),
    ],
)
def test_a_wrong_name_or_category_is_an_error_listing_the_valid_ones(choice: Choice, errors: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        plan(choice=choice)
    assert err.value.errors == errors


def test_the_files_select_is_checked_at_load_with_its_location() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**registry(), "select": {"providers": ["free", "nope"], "categories": ["dex"]}}, "f.yml", env={})
    assert err.value.errors == [
        "f.yml: select.providers[1]: unknown provider 'nope'; known: free, freemium, news_free, news_paid, paid",
        "f.yml: select.categories[0]: invalid value 'dex' (one of: market_data, explorers, rpc_nodes, news, sentiment, onchain, exchanges)",
    ]


def test_enabled_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(registry(paid={"enabled": "yes"}), "f.yml", env={})
    assert err.value.errors == ["f.yml: providers[paid].enabled: must be true or false, got 'yes'"]


def test_why_names_the_env_vars_and_never_a_value() -> None:
    config = plan({"NEWS_KEY": "secret-value"}, Choice(disable=("news_paid",)), registry(free={"enabled": False}))
    reasons = {d.name: why(d) for d in config.disabled}
    assert reasons == {
        "free": "enabled: false in the file",
        "paid": "it needs a key and none is set: set PAID_KEY_1 or PAID_KEY_2 to probe it",
        "news_paid": "--disable on the command line",
    }
    assert "secret-value" not in repr(config.disabled) + "".join(reasons.values())


def test_the_shipped_registry_with_no_key_runs_its_keyless_providers_only() -> None:
    config = select(load_config(env={}))
    assert config.disabled and all(d.reason is DisabledReason.NO_KEY for d in config.disabled)
    assert all(d.provider.auth.requires_key for d in config.disabled)
    assert all(not p.auth.requires_key for p in config.providers)
    assert len(config.providers) + len(config.disabled) == len(load_config(env={}).providers)


def test_a_disabled_providers_key_is_still_a_secret_to_redact() -> None:
    config = plan({"PAID_KEY_1": "paid-secret-1"}, Choice(disable=("paid",)))
    assert "paid" not in running(config) and config.secrets() == ("paid-secret-1",)
