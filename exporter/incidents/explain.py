"""The rule-based explanation of an incident: always available, offline.

The facts (facts.py) say what the probes saw; the alerts say what fired. The rules pick
the likely cause in a fixed order of precedence (what explains everything else first:
announced maintenance, a node on another chain; then the failure most probes saw, with
the evidence that refines it; then what the alerts alone point at), and the remediation
comes from the one table (causes.py). An LLM summary, when configured, is added beside
this text, never instead of it (llm.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..model import Outcome
from .causes import OUTCOME_CAUSE, REMEDIATION, TITLES, Cause
from .facts import EndpointFacts, Facts, ProviderFacts
from .records import Incident, StoredAlert

# What an alert of the rules points at when the facts do not say more.
ALERT_CAUSE: dict[str, Cause] = {
    "ApiKeyInvalid": Cause.KEY_REJECTED,
    "ApiKeysRejected": Cause.KEY_REJECTED,
    "ProviderRateLimited": Cause.RATE_LIMITED,
    "RateLimited": Cause.RATE_LIMITED,
    "RateLimitNearExhaustion": Cause.RATE_LIMITED,
    "ProbeBudgetExhausted": Cause.BUDGET_EXHAUSTED,
    "ChainHeadLagging": Cause.STALE_NODE,
    "ChainHeadStuck": Cause.STALE_NODE,
    "ChainHeadsDiverged": Cause.STALE_NODE,
    "RpcWrongChain": Cause.WRONG_CHAIN,
    "ProviderMaintenance": Cause.MAINTENANCE,
    "HighLatency": Cause.SLOW,
    "LatencyAnomaly": Cause.SLOW,
    "DataStale": Cause.STALE_DATA,
    "ValueFrozen": Cause.STALE_DATA,
    "FeedSilent": Cause.FEED,
    "FeedLagging": Cause.FEED,
    "FeedReconnecting": Cause.FEED,
    "FeedSequenceGaps": Cause.FEED,
    "FeedPriceFrozen": Cause.FEED,
    "ExporterDown": Cause.EXPORTER_DOWN,
    "CircuitBreakerOpen": Cause.CIRCUIT_OPEN,
}
SLOW_FACTOR = 3.0  # latency this many times its baseline is "slow"
SLOW_MIN_MS = 200.0  # ... and at least this much: 3 ms against 1 ms is no incident
QUOTA_HIGH = 90.0  # percent used
FACT_LINES = 30  # evidence lines kept (a storm over 50 providers would list hundreds)


@dataclass(frozen=True)
class Explanation:
    cause: Cause
    title: str
    summary: str  # the rule text: cause, evidence, what to do
    remediation: str
    facts: tuple[str, ...]
    facts_source: str
    explained_at: float
    source: str = "rules"  # "llm" once an LLM summary was added
    llm_summary: str | None = None

    @property
    def text(self) -> str:
        """What a person reads first: the LLM's summary when there is one, else the rules'."""
        return self.llm_summary or self.summary

    def with_llm(self, summary: str) -> Explanation:
        return replace(self, source="llm", llm_summary=summary)

    def to_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause.value,
            "title": self.title,
            "summary": self.summary,
            "remediation": self.remediation,
            "facts": list(self.facts),
            "facts_source": self.facts_source,
            "explained_at": self.explained_at,
            "source": self.source,
            "llm_summary": self.llm_summary,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Explanation:
        return cls(
            cause=Cause(d["cause"]),
            title=str(d["title"]),
            summary=str(d["summary"]),
            remediation=str(d["remediation"]),
            facts=tuple(str(x) for x in d.get("facts", ())),
            facts_source=str(d.get("facts_source", "none")),
            explained_at=float(d["explained_at"]),
            source=str(d.get("source", "rules")),
            llm_summary=d.get("llm_summary"),
        )


def _affected_endpoints(p: ProviderFacts, endpoints: set[str]) -> list[EndpointFacts]:
    """The endpoints the alerts name, or every endpoint of the provider when they name none."""
    named = [e for e in p.endpoints if f"{e.provider}/{e.endpoint}" in endpoints]
    return named or list(p.endpoints)


def _probe_line(e: EndpointFacts) -> str | None:
    failing = {o: n for o, n in e.recent.items() if o != "success"}
    if not failing:
        return None
    total = sum(e.recent.values())
    parts = ", ".join(f"{n} {o}" for o, n in sorted(failing.items(), key=lambda x: -x[1]))
    codes = ", ".join(f"HTTP {c}" + (f" x{n}" if n > 1 else "") for c, n in sorted(e.codes.items()))
    line = f"{e.provider}/{e.endpoint}: {parts} of the last {total} probes"
    if codes:
        line += f" ({codes})"
    if e.last_error:
        line += f"; last error: {e.last_error}"
    return line


def _slow(e: EndpointFacts) -> bool:
    return e.latency_ms is not None and e.baseline_ms is not None and e.latency_ms >= SLOW_MIN_MS and e.latency_ms >= SLOW_FACTOR * e.baseline_ms


def _first(causes: Iterable[Cause | None]) -> Cause | None:
    return next((c for c in causes if c is not None), None)


def explain(incident: Incident, alerts: Sequence[StoredAlert], facts: Facts, now: float) -> Explanation:
    endpoints = set(incident.endpoints)
    affected = [p for name in incident.providers if (p := facts.provider(name)) is not None]
    lines: list[str] = []
    failures: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    rate_limit_bodies: list[str] = []
    maintenance = wrong_chain = syncing = lagging = keys_rejected = quota_spent = slow = False
    for p in affected:
        if p.maintenance:
            maintenance = True
            lines.append(f"{p.provider}: in maintenance by its own status source" + (f" ({p.maintenance_detail})" if p.maintenance_detail else ""))
        if p.circuit_state and p.circuit_state != "closed":
            lines.append(f"{p.provider}: circuit breaker {p.circuit_state}")
        for k in p.keys:
            if k.set and not k.valid:
                keys_rejected = True
                lines.append(f"{p.provider}: key {k.env} rejected by the provider")
        for q in p.quotas:
            if (q.percentage is not None and q.percentage >= QUOTA_HIGH) or q.status == "exhausted":
                quota_spent = True
                lines.append(
                    f"{p.provider}: quota {q.scope} at {q.percentage:.0f} % used" if q.percentage is not None else f"{p.provider}: quota {q.scope} exhausted"
                )
        for c in p.chain:
            if c.chain_id_mismatch:
                wrong_chain = True
                lines.append(f"{p.provider}/{c.endpoint}: reports another chain id than {c.chain}")
            elif c.syncing:
                syncing = True
                lines.append(f"{p.provider}/{c.endpoint}: syncing ({c.chain})")
            elif (c.lag_blocks is not None and c.lag_blocks > 0 and c.status != "ok") or c.status in ("lagging", "stuck", "stale"):
                lagging = True
                behind = f"{c.lag_blocks} blocks behind the reference head" if c.lag_blocks is not None else "behind the reference head"
                still = f", head unchanged for {c.still_seconds:.0f} s" if c.still_seconds and c.still_seconds >= 1 else ""
                lines.append(f"{p.provider}/{c.endpoint}: {behind} of {c.chain}{still}")
        for e in _affected_endpoints(p, endpoints):
            if (line := _probe_line(e)) is not None:
                lines.append(line)
            for outcome, n in e.recent.items():
                if outcome not in ("success", "circuit_open"):  # an open breaker hides the failure that opened it
                    failures[outcome] += n
            if e.recent.get("rate_limited") and 200 in e.codes:
                rate_limit_bodies.append(f"{e.provider}/{e.endpoint}" + (f' ("{e.last_error}")' if e.last_error else ""))
            codes.update({c: n for c, n in e.codes.items() if c >= 400})
            if _slow(e):
                slow = True
                lines.append(f"{e.provider}/{e.endpoint}: latency {e.latency_ms:.0f} ms against a baseline of {e.baseline_ms:.0f} ms")
    dominant = failures.most_common(1)[0][0] if failures else None
    by_outcome: Cause | None = None
    if dominant is not None:
        as_outcome = _outcome(dominant)
        by_outcome = OUTCOME_CAUSE.get(as_outcome) if as_outcome is not None else None
        if by_outcome is Cause.STALE_DATA and lagging:
            by_outcome = Cause.STALE_NODE
    by_alert = _first(ALERT_CAUSE.get(name) for name in incident.alertnames)
    cause = (
        _first(
            (
                Cause.EXPORTER_DOWN if "ExporterDown" in incident.alertnames else None,
                Cause.MAINTENANCE if maintenance else None,
                Cause.WRONG_CHAIN if wrong_chain else None,
                by_outcome,
                Cause.KEY_REJECTED if keys_rejected else None,
                Cause.STALE_NODE if lagging else None,
                Cause.NODE_SYNCING if syncing else None,
                Cause.RATE_LIMITED if quota_spent else None,
                Cause.SLOW if slow else None,
                by_alert,
                Cause.CIRCUIT_OPEN if failures.get("circuit_open") else None,
            )
        )
        or Cause.UNKNOWN
    )
    title = TITLES[cause]
    if cause is Cause.RATE_LIMITED and rate_limit_bodies:
        lines.insert(0, f"HTTP 200 answers that carry a rate-limit error in the body: {', '.join(rate_limit_bodies[:5])}")
    if cause is Cause.OUTAGE and codes:
        title += f" (HTTP {', '.join(str(c) for c, _ in codes.most_common(3))})"
    if facts.source == "none" or not affected:
        lines.append("no facts about the affected providers could be read" + (f" ({'; '.join(facts.warnings)})" if facts.warnings else ""))
    lines = lines[:FACT_LINES]
    where = ", ".join(incident.providers[:6]) + (f" and {len(incident.providers) - 6} more" if len(incident.providers) > 6 else "")
    fired = ", ".join(incident.alertnames[:6])
    summary = f"{title}" + (f", at {where}" if where else "") + f". Alerts: {fired or 'none named'}."
    if lines:
        summary += " Evidence: " + "; ".join(lines[:6]) + "."
    remediation = REMEDIATION[cause]
    summary += f" What to do: {remediation}"
    return Explanation(cause, title, summary, remediation, tuple(lines), facts.source, now)


def _outcome(value: str) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None
