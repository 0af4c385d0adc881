"""Shards: rendezvous hashing of the provider name over the shipped registry, the plan
each shard runs, the flags, and crypto_api_exporter_shard_info."""

from __future__ import annotations

import math

import pytest

from exporter.app import Exporter
from exporter.config import load_config
from exporter.selection import select
from exporter.shard import Shard, ShardError, ordinal_from_hostname, owner, shard_of
from exporter.sharding import restrict

REGISTRY = load_config(None, {})
NAMES = [p.name for p in REGISTRY.providers]


@pytest.mark.parametrize("total", range(1, 8))
def test_every_provider_has_exactly_one_owner(total: int) -> None:
    plan = select(REGISTRY)
    shards = [restrict(Shard(i, total), plan) for i in range(total)]
    owned = [n for s in shards for n in (*(p.name for p in s.providers), *(d.name for d in s.disabled))]
    assert sorted(owned) == sorted(NAMES), "every provider once, none twice"
    for s in shards:
        assert len(s.not_selected) == len(NAMES) - len(s.providers) - len(s.disabled)


@pytest.mark.parametrize("total", range(1, 8))
def test_growing_n_to_n_plus_1_moves_about_1_over_n_plus_1_and_only_to_the_new_shard(total: int) -> None:
    moved = [n for n in NAMES if owner(n, total) != owner(n, total + 1)]
    assert all(owner(n, total + 1) == total for n in moved), "a provider only ever moves to the new shard"
    p = 1 / (total + 1)
    expected, sigma = len(NAMES) * p, math.sqrt(len(NAMES) * p * (1 - p))
    # The hash is fixed, so this is one draw per N: within three binomial sigmas.
    assert abs(len(moved) - expected) <= 3 * sigma, (len(moved), expected)


def test_a_modulo_split_would_have_moved_most_providers() -> None:
    """The peer the hashing is measured against: hash mod N reshuffles nearly everything."""
    import hashlib

    def mod(name: str, n: int) -> int:
        return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") % n

    moved_mod = sum(mod(n, 3) != mod(n, 4) for n in NAMES)
    moved_hrw = sum(owner(n, 3) != owner(n, 4) for n in NAMES)
    assert moved_hrw < moved_mod / 2


def test_the_split_is_balanced_enough() -> None:
    counts = [sum(owner(n, 3) == i for n in NAMES) for i in range(3)]
    assert min(counts) >= len(NAMES) / 3 / 2, counts


def test_owner_is_stable_across_processes() -> None:
    # blake2b, not the salted builtin hash(): these values are part of every deployment.
    assert [owner(n, 3) for n in ("binance", "etherscan", "coingecko")] == [owner(n, 3) for n in ("binance", "etherscan", "coingecko")]
    assert owner("binance", 1) == 0


@pytest.mark.parametrize(
    ("index", "total", "message"),
    [(3, 3, "--shard must be between 0 and 2"), (-1, 2, "--shard must be between 0 and 1"), (0, 0, "--total-shards must be 1 or more")],
)
def test_a_shard_that_cannot_be_is_refused(index: int, total: int, message: str) -> None:
    with pytest.raises(ShardError, match=message):
        Shard(index, total)


def test_the_statefulset_ordinal_from_the_hostname() -> None:
    assert ordinal_from_hostname("crypto-api-exporter-2") == 2
    assert shard_of(None, 3, True, "crypto-api-exporter-1") == Shard(1, 3)
    with pytest.raises(ShardError, match="does not end in -<ordinal>"):
        ordinal_from_hostname("laptop")
    with pytest.raises(ShardError, match="pick one"):
        shard_of(1, 3, True, "x-1")
    with pytest.raises(ShardError, match="between 0 and 2"):
        shard_of(None, 3, True, "crypto-api-exporter-3")


def test_unsharded_is_shard_0_of_1_and_changes_nothing() -> None:
    plan = select(REGISTRY)
    assert restrict(Shard(), plan).providers == plan.providers
    assert restrict(Shard(), plan).shard == Shard(0, 1)


def test_shard_info_is_exposed_with_the_running_shard() -> None:
    plan = restrict(Shard(1, 3), select(REGISTRY))
    exporter = Exporter(lambda: plan, process_metrics=False)
    text = exporter.exposition.render().decode()
    assert 'crypto_api_exporter_shard_info{shard="1",total_shards="3"} 1.0' in text
    assert "# TYPE crypto_api_exporter_shard_info gauge" in text
    providers = {line.split('provider="')[1].split('"')[0] for line in text.splitlines() if line.startswith("crypto_api_provider_info{")}
    assert providers == {p.name for p in (*plan.providers, *(d.provider for d in plan.disabled))}


def test_check_config_says_which_shard_and_refuses_a_wrong_one(capsys: pytest.CaptureFixture[str]) -> None:
    from exporter.cli import main

    assert main(["check-config", "--total-shards", "3", "--shard", "1"]) == 0
    out = capsys.readouterr().out
    owned = [n for n in NAMES if owner(n, 3) == 1]
    assert f": OK, {len(owned)} providers," in out and "(shard 1 of 3)" in out
    with pytest.raises(SystemExit):
        main(["check-config", "--total-shards", "3", "--shard", "3"])
    assert "--shard must be between 0 and 2" in capsys.readouterr().err
