"""Token buckets per client and route group (optional, off by default).

Answers carry the IETF RateLimit header fields as draft-ietf-httpapi-ratelimit-headers-10
/-11 spell them (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/):
`RateLimit-Policy: "<policy>";q=<quota>;w=<window s>` and
`RateLimit: "<policy>";r=<remaining>;t=<seconds until more quota>`, the policy name a
quoted structured-field string (the -10 slides, issue #158). A 429 also carries
`Retry-After` (RFC 9110 §10.2.3) in whole seconds.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Bucket:
    """`burst` requests at once, refilled at `rate` per second."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate={self.rate} burst={self.burst}")

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill: the policy's `w`."""
        return max(1, math.ceil(self.burst / self.rate))


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    default: Bucket
    # Path prefix -> (group name, bucket); the longest matching prefix wins. A group is
    # known before routing, so a refused request never reaches the app.
    groups: Mapping[str, tuple[str, Bucket]] = field(default_factory=dict)
    # Clients tracked at once; the least recently seen is forgotten (it comes back with a
    # full bucket), so an address scan cannot grow memory.
    max_clients: int = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    group: str
    headers: tuple[tuple[str, str], ...]


class RateLimiter:
    def __init__(self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._prefixes = sorted(config.groups.items(), key=lambda kv: -len(kv[0]))
        self._state: OrderedDict[tuple[str, str], list[float]] = OrderedDict()  # -> [tokens, last refill]
        self.limited: dict[str, int] = {}

    def group_for(self, path: str) -> tuple[str, Bucket]:
        for prefix, group in self._prefixes:
            if path.startswith(prefix):
                return group
        return ("default", self._config.default)

    def check(self, client: str, path: str) -> Decision:
        name, bucket = self.group_for(path)
        now = self._clock()
        key = (client, name)
        state = self._state.get(key)
        if state is None:
            state = [float(bucket.burst), now]
            self._state[key] = state
            if len(self._state) > self._config.max_clients:
                self._state.popitem(last=False)
        else:
            self._state.move_to_end(key)
            state[0] = min(float(bucket.burst), state[0] + (now - state[1]) * bucket.rate)
            state[1] = now
        allowed = state[0] >= 1.0
        if allowed:
            state[0] -= 1.0
        remaining = int(state[0])
        # Seconds until one more token: what `t` and Retry-After mean here.
        wait = 0 if state[0] >= 1.0 else math.ceil((1.0 - state[0]) / bucket.rate)
        headers = [
            ("RateLimit-Policy", f'"{name}";q={bucket.burst};w={bucket.window}'),
            ("RateLimit", f'"{name}";r={remaining};t={wait}'),
        ]
        if not allowed:
            headers.append(("Retry-After", str(max(1, wait))))
            self.limited[name] = self.limited.get(name, 0) + 1
        return Decision(allowed, name, tuple(headers))

    def __len__(self) -> int:
        return len(self._state)
