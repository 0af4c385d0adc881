"""Likely causes of an incident and what to do about each: the remediation table.

It grew out of the one-hint-per-outcome table of /api/failures (web/api/remediation.py
reads `HINTS` from here, so the two never disagree): every probe outcome that is a
failure has a cause, and the causes that no single outcome names (maintenance, a node
behind its chain, a node on another chain, slowness, a silent feed, the exporter itself)
are added beside them."""

from __future__ import annotations

from enum import StrEnum

from ..model import Outcome

HINTS: dict[Outcome, str] = {
    Outcome.TIMEOUT: "The provider did not answer in time: check its status page, raise the endpoint's timeout, or lower how often it is probed.",
    Outcome.CONNECTION_ERROR: "No connection: check DNS, proxies and firewalls between the exporter and the provider, and whether base_url is still right.",
    Outcome.RATE_LIMITED: "The provider's quota is used up: probe less often, set a client-side budget below the quota, or add another API key.",
    Outcome.AUTH_ERROR: "The API key was rejected: check that the key env vars are set and current (POST /api/config/keys/test), rotate or renew the key.",
    Outcome.CLIENT_ERROR: "The provider refused the request (4xx): the endpoint's path or parameters may have changed; compare with the provider's docs.",
    Outcome.SERVER_ERROR: "The provider failed (5xx): usually on their side; check their status page. The circuit breaker stops probing if it lasts.",
    Outcome.BAD_PAYLOAD: (
        "The answer was not what was expected (not JSON, nested too deep, failed assertion, body error rule, too large once decoded,"
        " or a redirect to another origin, which is never followed so that keys stay with the provider): the API may have changed"
        " its format or moved; a `probe_crashed` log line means the exporter failed on it, please report it."
    ),
    Outcome.STALE: "The data is older than its max age: the provider's feed may be stuck; check its status page or relax the freshness bound.",
    Outcome.CIRCUIT_OPEN: "Probes are skipped while the circuit breaker is open after repeated failures; it lets one probe through after its reset timeout.",
    Outcome.BUDGET_EXHAUSTED: "The exporter's own request budget for this provider is spent for the window: raise budget.requests or probe less often.",
}


def hint(outcome: Outcome) -> str | None:
    return HINTS.get(outcome)


class Cause(StrEnum):
    """The likely cause of an incident: a closed set (it is stored and filtered on)."""

    OUTAGE = "outage"  # 5xx answers
    RATE_LIMITED = "rate_limited"
    KEY_REJECTED = "key_rejected"
    TIMEOUT = "timeout"
    NETWORK = "network"
    BAD_PAYLOAD = "bad_payload"
    CLIENT_ERROR = "client_error"
    STALE_DATA = "stale_data"
    STALE_NODE = "stale_node"  # an RPC node behind its chain's reference head, or stuck
    WRONG_CHAIN = "wrong_chain"
    NODE_SYNCING = "node_syncing"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CIRCUIT_OPEN = "circuit_open"
    MAINTENANCE = "maintenance"
    SLOW = "slow"
    FEED = "feed"
    EXPORTER_DOWN = "exporter_down"
    UNKNOWN = "unknown"


# The cause a failing outcome points at (STALE: stale data, unless the chain facts show a node behind).
OUTCOME_CAUSE: dict[Outcome, Cause] = {
    Outcome.SERVER_ERROR: Cause.OUTAGE,
    Outcome.RATE_LIMITED: Cause.RATE_LIMITED,
    Outcome.AUTH_ERROR: Cause.KEY_REJECTED,
    Outcome.TIMEOUT: Cause.TIMEOUT,
    Outcome.CONNECTION_ERROR: Cause.NETWORK,
    Outcome.BAD_PAYLOAD: Cause.BAD_PAYLOAD,
    Outcome.CLIENT_ERROR: Cause.CLIENT_ERROR,
    Outcome.STALE: Cause.STALE_DATA,
    Outcome.BUDGET_EXHAUSTED: Cause.BUDGET_EXHAUSTED,
    Outcome.CIRCUIT_OPEN: Cause.CIRCUIT_OPEN,
}

# One line a person reads first: what most likely happened.
TITLES: dict[Cause, str] = {
    Cause.OUTAGE: "Provider outage: it answers with server errors (5xx)",
    Cause.RATE_LIMITED: "Rate limited: the provider's quota is used up",
    Cause.KEY_REJECTED: "API key rejected by the provider",
    Cause.TIMEOUT: "The provider does not answer in time",
    Cause.NETWORK: "No connection to the provider",
    Cause.BAD_PAYLOAD: "The provider's answers are not what is expected",
    Cause.CLIENT_ERROR: "The provider refuses the request (4xx)",
    Cause.STALE_DATA: "Stale data: the provider's payload is older than its bound",
    Cause.STALE_NODE: "Stale node: the RPC node's head is behind its chain (or stuck)",
    Cause.WRONG_CHAIN: "The RPC node answers for another chain",
    Cause.NODE_SYNCING: "The RPC node is syncing",
    Cause.BUDGET_EXHAUSTED: "The exporter's own request budget is spent",
    Cause.CIRCUIT_OPEN: "Probes skipped: the circuit breaker is open",
    Cause.MAINTENANCE: "Announced maintenance at the provider",
    Cause.SLOW: "The provider answers, but slowly",
    Cause.FEED: "A market-data feed is silent, lagging or reconnecting",
    Cause.EXPORTER_DOWN: "The exporter itself is down: no provider result can be trusted",
    Cause.UNKNOWN: "Cause unknown from the facts at hand",
}

_EXTRA: dict[Cause, str] = {
    Cause.STALE_NODE: (
        "The node's head lags the chain's reference head (the second-highest of the endpoints on the right chain): "
        "prefer another endpoint (GET /api/chains names the best), check the node's peers and disk, or ask the provider."
    ),
    Cause.WRONG_CHAIN: "The endpoint reports another chain id: fix its URL or the configured chain; never route traffic to it.",
    Cause.NODE_SYNCING: "The node says it is syncing: use another endpoint until it has caught up.",
    Cause.MAINTENANCE: "Nothing to fix on your side: the provider announced maintenance; its alerts are muted while it lasts.",
    Cause.SLOW: "Latency is well above its baseline: check the provider's status page, the network path, and the exporter's host load.",
    Cause.FEED: "Check the venue's status and the feed's reconnect reasons (GET /api/feeds); a silent socket is reopened by itself.",
    Cause.EXPORTER_DOWN: "Restart the exporter or its container and check its logs; Prometheus's target page says since when.",
    Cause.UNKNOWN: "Look at the affected endpoints' recent probes (GET /api/logs?provider=...) and the provider's status page.",
}

REMEDIATION: dict[Cause, str] = {**{cause: HINTS[outcome] for outcome, cause in OUTCOME_CAUSE.items()}, **_EXTRA}
