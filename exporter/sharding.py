"""Splitting the providers across N exporter processes (`--shard I --total-shards N`).

A shard is a further filter of the plan `exporter.selection.select` made: each process
keeps the providers it owns (exporter/shard.py), probed or disabled, and leaves the
others to their shards (they join `not_selected`). Whole providers, never endpoints: a
provider's budget, circuit breaker and keys must live in one process.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import replace

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .config import Config
from .families import EXPORTER_SHARD_INFO
from .shard import Shard, ShardError, shard_of


def restrict(shard: Shard, config: Config) -> Config:
    """The plan with only this shard's providers; the others are `not_selected`."""
    if not shard.sharded:
        return replace(config, shard=shard)
    others = tuple(p.name for p in config.providers if not shard.owns(p.name))
    others += tuple(d.name for d in config.disabled if not shard.owns(d.name))
    return replace(
        config,
        providers=tuple(p for p in config.providers if shard.owns(p.name)),
        disabled=tuple(d for d in config.disabled if shard.owns(d.name)),
        not_selected=(*config.not_selected, *others),
        shard=shard,
    )


class ShardInfo(Collector):
    """crypto_api_exporter_shard_info{shard, total_shards} 1, from the running config, so
    a dashboard can tell the replicas apart and count them."""

    def __init__(self, shard: Callable[[], Shard]) -> None:
        self.shard = shard

    def collect(self) -> Iterator[GaugeMetricFamily]:
        shard = self.shard()
        family = GaugeMetricFamily(EXPORTER_SHARD_INFO.name, EXPORTER_SHARD_INFO.help, labels=EXPORTER_SHARD_INFO.labels)
        family.add_metric((str(shard.index), str(shard.total)), 1.0)
        yield family


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "shards",
        "Split the selected providers across N exporters by rendezvous hashing of the provider name: "
        "each runs with the same file and flags and its own --shard (docs/deploy.md).",
    )
    group.add_argument("--shard", dest="shard", type=int, default=None, metavar="I", help="this exporter's shard, 0 .. N-1 (default 0)")
    group.add_argument(
        "--total-shards", dest="total_shards", type=int, default=1, metavar="N", help="how many shards share the providers (default 1: no sharding)"
    )
    group.add_argument(
        "--shard-from-hostname",
        dest="shard_from_hostname",
        action="store_true",
        help="take --shard from the hostname's trailing -<ordinal> (a StatefulSet pod: name-2 is shard 2)",
    )


def from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Shard:
    try:
        return shard_of(args.shard, args.total_shards, args.shard_from_hostname)
    except ShardError as e:
        parser.error(str(e))
