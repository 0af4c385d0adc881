"""Frozen values: an extracted number that stops moving while everything else looks fine.

A stuck cache upstream answers 200, fast, with fresh timestamps and yesterday's price
(pyth-observer's stall detector and Chainlink's `answer_stalled` watch for the same).
Per extracted value we remember the last number and when it last changed, on the
prober's own clock (the payload's timestamps are exactly what a stuck cache keeps
advancing). A value with `max_unchanged` that stayed equal for longer than that makes
the probe `stale`; every value's last change is exported as
`crypto_api_value_last_change_timestamp_seconds`.

One owner per provider: its runtime (runtime.py), so the memory survives a reload
while the value's spec (name, path, scale, bound) is unchanged, and starts afresh when
it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config import Endpoint, ExtractedValue, Provider


@dataclass(slots=True)
class _Seen:
    spec: ExtractedValue
    value: float
    changed_at: float  # unix seconds, the prober's clock


class ValueTracker:
    """The last value and its last change, per (endpoint, value name), for one provider."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], _Seen] = {}

    def observe(self, endpoint: Endpoint, values: Iterable[tuple[str, float]], now: float) -> str | None:
        """Record a probe's values; the reason the first bounded value is frozen, or None.

        The first sight of a value counts as a change: nobody knows how long it stood
        still before the exporter (re)started, and a false `stale` at start-up would
        be worse than a late one."""
        specs = {v.name: v for v in endpoint.values}
        frozen: str | None = None
        for name, number in values:
            spec = specs.get(name)
            if spec is None:
                continue
            key = (endpoint.name, name)
            seen = self._seen.get(key)
            if seen is None or seen.spec != spec or seen.value != number:
                self._seen[key] = _Seen(spec, number, now)
                continue
            still = now - seen.changed_at
            if frozen is None and spec.max_unchanged is not None and still > spec.max_unchanged:
                frozen = f"value {name} unchanged at {number:g} for {still:.0f}s (max_unchanged {spec.max_unchanged:g}s)"
        return frozen

    def last_changes(self) -> Iterator[tuple[str, str, float]]:
        """(endpoint, value name, last change) for every value seen."""
        for (endpoint, name), seen in self._seen.items():
            yield endpoint, name, seen.changed_at

    def carried_to(self, provider: Provider) -> ValueTracker:
        """The memory for the reloaded `provider`: values whose spec is unchanged keep it."""
        kept = ValueTracker()
        specs = {(ep.name, v.name): v for ep in provider.endpoints for v in ep.values}
        kept._seen = {k: s for k, s in self._seen.items() if specs.get(k) == s.spec}
        return kept
