"""The mutable state of each provider that its probes consult and change: circuit
breaker, key ring and client-side budget.

One owner: `Runtimes`, built and reloaded by the composition root. Probes act on a
provider's runtime; the store and /metrics read it and never keep a copy, so what
/metrics shows is what the next probe will use, reloads included. On reload each piece
carries over while its own spec is unchanged and starts fresh otherwise: a new breaker
spec closes the breaker, a rotated key value is valid until rejected, and an unchanged
budget keeps what it has spent (a reload must not grant a second quota), and a value's
frozen-value memory stays while its spec is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .circuit import CircuitBreaker
from .config import Config, Provider
from .frozen import ValueTracker
from .keys import KeyRing
from .ratelimit import BudgetWindow


@dataclass(slots=True)
class ProviderRuntime:
    breaker: CircuitBreaker
    keys: KeyRing
    budget: BudgetWindow | None = None
    values: ValueTracker = field(default_factory=ValueTracker)  # frozen-value memory (frozen.py)

    @classmethod
    def fresh(cls, provider: Provider) -> ProviderRuntime:
        return cls(
            CircuitBreaker(provider.circuit_breaker),
            KeyRing.for_auth(provider.auth),
            BudgetWindow(provider.budget) if provider.budget else None,
        )

    def carried_to(self, provider: Provider) -> ProviderRuntime:
        """The runtime for the reloaded `provider`, piece by piece."""
        breaker = self.breaker if self.breaker.spec == provider.circuit_breaker else CircuitBreaker(provider.circuit_breaker)
        if provider.budget is None:
            budget = None
        elif self.budget is not None and self.budget.budget == provider.budget:
            budget = self.budget
        else:
            budget = BudgetWindow(provider.budget)
        return ProviderRuntime(breaker, self.keys.carried_to(provider.auth), budget, self.values.carried_to(provider))


class Runtimes:
    """Every configured provider's runtime, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, ProviderRuntime] = {}

    def apply(self, config: Config) -> None:
        """Match the config: carry over, start fresh, or drop removed providers."""
        old = self._by_name
        self._by_name = {p.name: old[p.name].carried_to(p) if p.name in old else ProviderRuntime.fresh(p) for p in config.providers}

    def __getitem__(self, provider: str) -> ProviderRuntime:
        return self._by_name[provider]

    def get(self, provider: str) -> ProviderRuntime | None:
        return self._by_name.get(provider)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)
