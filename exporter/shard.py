"""Which shard owns which provider: rendezvous (highest random weight) hashing of the
provider name. Every shard scores every provider with a stable hash of (shard, name) and
the highest score owns it, so growing N to N+1 moves only the providers the new shard
now wins, about 1/(N+1) of them, and each shard decides alone: nothing coordinates the
replicas. exporter/sharding.py applies it to a plan.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass

_ORDINAL = re.compile(r"-(\d+)$")


class ShardError(ValueError):
    """A shard flag that cannot be: the message names the flag and the valid range."""


def _score(shard: int, name: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and every replica must agree.
    return int.from_bytes(hashlib.blake2b(f"{shard}\x00{name}".encode(), digest_size=8).digest(), "big")


def owner(name: str, total: int) -> int:
    """The shard (0 .. total-1) that owns the provider `name`."""
    return max(range(total), key=lambda shard: _score(shard, name))


@dataclass(frozen=True)
class Shard:
    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ShardError(f"--total-shards must be 1 or more, got {self.total}")
        if not 0 <= self.index < self.total:
            raise ShardError(f"--shard must be between 0 and {self.total - 1} (--total-shards {self.total}), got {self.index}")

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owns(self, name: str) -> bool:
        return not self.sharded or owner(name, self.total) == self.index


def ordinal_from_hostname(hostname: str | None = None) -> int:
    """A StatefulSet pod's ordinal: `crypto-api-exporter-2` is shard 2."""
    name = hostname if hostname is not None else socket.gethostname()
    match = _ORDINAL.search(name)
    if not match:
        raise ShardError(f"--shard-from-hostname: the hostname {name!r} does not end in -<ordinal> (a StatefulSet pod's name does)")
    return int(match.group(1))


def shard_of(index: int | None, total: int, from_hostname: bool, hostname: str | None = None) -> Shard:
    """The shard the flags ask for; `--shard-from-hostname` reads the index from the pod name."""
    if from_hostname and index is not None:
        raise ShardError("--shard and --shard-from-hostname both give the shard: pick one")
    if from_hostname:
        index = ordinal_from_hostname(hostname)
    return Shard(index if index is not None else 0, total)


UNSHARDED = Shard()  # one process owns every provider
