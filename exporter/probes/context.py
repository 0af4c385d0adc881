"""What every probe of every kind gets: shared HTTP sessions, clocks, the redactor, and
the spec of the endpoint it probes with its provider's runtime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..chains import Chains
from ..config import Endpoint, Provider
from ..model import Outcome, ProbeResult, QuotaObservation
from ..redact import Redactor
from ..runtime import ProviderRuntime
from .request import RequestCache


@dataclass
class ProbeContext:
    """Shared by every probe: built once by the composition root. Clocks and sleep are
    injected so tests advance time instead of waiting."""

    session: aiohttp.ClientSession
    fresh_session: aiohttp.ClientSession | None = None  # connector with force_close, for fresh_connection
    redactor: Redactor = field(default_factory=Redactor)
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    backoff_base: float = 0.5
    requests: RequestCache = field(default_factory=RequestCache)
    chains: Chains = field(default_factory=Chains)  # chain_head probes record heads here (app.py owns it)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One endpoint to probe, with the provider it belongs to and that provider's runtime
    (breaker, keys, budget), which the probe consults and updates."""

    provider: Provider
    endpoint: Endpoint
    runtime: ProviderRuntime


def probe_result(
    ctx: ProbeContext, spec: ProbeSpec, started: float, outcome: Outcome, detail: str = "", quotas: tuple[QuotaObservation, ...] = (), **kw: Any
) -> ProbeResult:
    """A probe's one result, as every kind ends it: the detail redacted, the client-side
    budget as it stands now after the quotas seen, the breaker's state."""
    runtime = spec.runtime
    if runtime.budget is not None:
        quotas = (*quotas, runtime.budget.observe(ctx.wall()))
    return ProbeResult(
        provider=spec.provider.name,
        category=spec.provider.category.value,
        endpoint=spec.endpoint.name,
        outcome=outcome,
        started_at=started,
        finished_at=ctx.wall(),
        detail=ctx.redactor.redact(detail),
        quotas=quotas,
        circuit_state=runtime.breaker.state,
        **kw,
    )
