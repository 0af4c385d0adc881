"""Rotating faults for the demo. The opening round injects every scenario at once, on
different providers, so every outcome shows up within a minute of start; later rounds
rotate a few faults at a time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from ..config import AuthType, Config, Provider
from ..model import ProbeKind
from .faults import FaultSpec

if TYPE_CHECKING:
    from .server import Simulator

log = structlog.get_logger()

# Each fault lives this many periods, so a probe on a 1-minute interval meets it.
LIFETIME_PERIODS = 3
FAULTS_PER_ROUND = 2

Scenario = Callable[[Provider, random.Random], "FaultSpec | None"]


def _latency(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, latency_ms=float(rng.randint(1500, 4000)))


def _server_error(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, status=rng.choice([500, 502, 503]))


def _client_error(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, endpoint=p.endpoints[-1].name, status=404)


def _rate_limited(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, rate_limit=_retry(rng))


def _body_rate_limit(p: Provider, rng: random.Random) -> FaultSpec | None:
    ep = next((e for e in p.endpoints if e.error_rules), None)
    return FaultSpec(p.name, endpoint=ep.name, body_error="rate_limit") if ep else None


def _stale(p: Provider, rng: random.Random) -> FaultSpec | None:
    ep = next((e for e in p.endpoints if e.freshness), None)
    if ep is None or ep.freshness is None:
        return None
    return FaultSpec(p.name, endpoint=ep.name, stale_seconds=ep.freshness.max_age * 2 + 60)


def _garbage(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, garbage=True)


def _hang(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, endpoint=p.endpoints[0].name, hang=True)


def _disconnect(p: Provider, rng: random.Random) -> FaultSpec:
    return FaultSpec(p.name, disconnect=True)


def _invalid_key(p: Provider, rng: random.Random) -> FaultSpec | None:
    if p.auth.type is AuthType.NONE or p.auth.optional:
        return None
    return FaultSpec(p.name, invalid_keys="all")


def _maintenance(p: Provider, rng: random.Random) -> FaultSpec | None:
    """The provider's status source says it is in maintenance now (what mutes its
    alerts; a window scheduled an hour ahead would show nothing in a demo's minutes:
    set one by hand with {"maintenance": "scheduled"})."""
    ep = next((e for e in p.endpoints if e.kind is ProbeKind.STATUS), None)
    if ep is None:
        return None
    return FaultSpec(p.name, endpoint=ep.name, maintenance="ongoing")


def _frozen(p: Provider, rng: random.Random) -> FaultSpec | None:
    """A price that stops moving while its timestamps advance (a stuck cache upstream)."""
    ep = next((e for e in p.endpoints if any(v.max_unchanged is not None for v in e.values)), None)
    return FaultSpec(p.name, endpoint=ep.name, frozen=True) if ep else None


def _retry(rng: random.Random):  # type: ignore[no-untyped-def]
    from .faults import RateLimitFault

    return RateLimitFault(retry_after=float(rng.randint(15, 25)))


SCENARIOS: tuple[tuple[str, Scenario], ...] = (
    ("latency", _latency),
    ("server_error", _server_error),
    ("rate_limited", _rate_limited),
    ("body_rate_limit", _body_rate_limit),
    ("stale", _stale),
    ("garbage", _garbage),
    ("hang", _hang),
    ("invalid_key", _invalid_key),
    ("disconnect", _disconnect),
    ("client_error", _client_error),
    ("maintenance", _maintenance),
    ("frozen", _frozen),
)


def plan_round(config: Config, round_no: int, rng: random.Random, count: int = FAULTS_PER_ROUND) -> list[tuple[str, FaultSpec]]:
    """The faults of one round: the next scenarios, each on the next provider it fits."""
    providers = [p for p in config.providers if p.endpoints]
    if not providers:
        return []
    out: list[tuple[str, FaultSpec]] = []
    used: set[str] = set()
    for i in range(count):
        name, scenario = SCENARIOS[(round_no * count + i) % len(SCENARIOS)]
        start = (round_no * count + i) * 7  # stride through providers, prime to most sizes
        for j in range(len(providers)):
            p = providers[(start + j) % len(providers)]
            if p.name in used:
                continue
            spec = scenario(p, rng)
            if spec is not None:
                out.append((name, spec))
                used.add(p.name)
                break
    return out


async def run_chaos(sim: Simulator, config: Config, period: float = 20.0, rng: random.Random | None = None) -> None:
    """Every `period` seconds retire the oldest chaos faults and inject new ones; the
    first round injects one of every scenario.

    Runs until cancelled; a failing round is logged and the loop goes on. On cancel it
    removes the faults it set.
    """
    rng = rng or random.Random()
    live: list[tuple[int, FaultSpec]] = []  # (round set, spec)
    round_no = 0
    try:
        while True:
            try:
                keep = []
                for born, spec in live:
                    if round_no - born >= LIFETIME_PERIODS:
                        sim.clear_faults(spec.provider, spec.endpoint)
                    else:
                        keep.append((born, spec))
                live = keep
                busy = {s.provider for _, s in live}
                count = len(SCENARIOS) if round_no == 0 else FAULTS_PER_ROUND
                planned = [(n, s) for n, s in plan_round(config, round_no, rng, count) if s.provider not in busy]
                for _name, spec in planned:
                    sim.set_fault(spec)
                    live.append((round_no, spec))
                log.info("chaos_round", round=round_no, injected=[f"{n}:{s.provider}" for n, s in planned], active=len(live))
            except Exception:
                log.exception("chaos_round_failed", round=round_no)
            round_no += 1
            await asyncio.sleep(period)
    except asyncio.CancelledError:
        for _, spec in live:
            try:
                sim.clear_faults(spec.provider, spec.endpoint)
            except Exception:
                log.exception("chaos_cleanup_failed")
        log.info("chaos_stopped", rounds=round_no)
        raise
