"""`GET /api/chains`: every chain's reference head, each endpoint's head, lag and status
against it, and the best endpoint now. Pure: reads the chain owner and the store."""

from __future__ import annotations

from ...chains import Chains, HeadStatus, View, penalty
from ...model import Outcome
from ...state import State
from .models import Chain, ChainEndpoint
from .views import iso

# Who may be "best": a node that answers for the chain. A lagging or stuck one is still
# ranked (its lag weighs in), a node on another chain, syncing or not heard from is not.
_INELIGIBLE = frozenset({HeadStatus.WRONG_CHAIN, HeadStatus.SYNCING, HeadStatus.UNKNOWN})


def _rates(state: State, provider: str, endpoint: str) -> tuple[float | None, float, float]:
    """(last latency, error rate, throttled rate) of an endpoint from the store."""
    ps = state.providers.get(provider)
    ep = ps.endpoints.get(endpoint) if ps is not None else None
    if ep is None:
        return None, 0.0, 0.0
    sent = sum(n for o, n in ep.outcomes.items() if not o.skipped)
    failed = sum(n for o, n in ep.outcomes.items() if not o.skipped and o is not Outcome.SUCCESS)
    throttled = ep.outcomes[Outcome.RATE_LIMITED]
    latency = ep.last_completed.duration if ep.last_completed is not None else None
    return latency, (failed / sent if sent else 0.0), (throttled / sent if sent else 0.0)


def _endpoint(view: View, state: State) -> ChainEndpoint:
    latency, errors, throttled = _rates(state, view.member.provider, view.member.endpoint)
    head, lag = view.head, view.lag
    eligible = view.status not in _INELIGIBLE
    return {
        "provider": view.member.provider,
        "endpoint": view.member.endpoint,
        "head": head.block if head else None,
        "head_timestamp": iso(head.timestamp) if head else None,
        "lag_blocks": lag.blocks if lag else None,
        "lag_seconds": lag.seconds if lag else None,
        "still_seconds": round(view.still_for, 3),
        "syncing": bool(head and head.syncing),
        "chain_id_mismatch": bool(head and not head.right_chain),
        "status": view.status.value,
        "latency_seconds": latency,
        "error_rate": round(errors, 4),
        "throttled_rate": round(throttled, 4),
        "penalty": round(penalty(errors, throttled, latency or 0.0, lag.blocks if lag else 0), 4) if eligible else None,
    }


def chain_rows(chains: Chains, state: State, now: float) -> list[Chain]:
    rows: list[Chain] = []
    views = chains.views(now)
    for name in chains.names():
        members = [v for v in views if v.member.spec.name == name]
        endpoints = sorted((_endpoint(v, state) for v in members), key=lambda e: (e["provider"], e["endpoint"]))
        ranked = sorted((e for e in endpoints if e["penalty"] is not None), key=lambda e: (e["penalty"], e["provider"], e["endpoint"]))
        spec = members[0].member.spec
        ref = chains.reference(name, now)
        rows.append(
            {
                "chain": name,
                "protocol": spec.protocol.value,
                "id": spec.id,
                "block_time_seconds": spec.block_time,
                "reference_head": ref.block if ref else None,
                "reference_timestamp": iso(ref.timestamp) if ref else None,
                "reporters": ref.reporters if ref else 0,
                "agreeing": ref.agreeing if ref else 0,
                "best": f"{ranked[0]['provider']}/{ranked[0]['endpoint']}" if ranked else None,
                "endpoints": endpoints,
            }
        )
    return rows
