"""What to do about each kind of failure: one hint per outcome, shown by /api/failures."""

from __future__ import annotations

from ...model import Outcome

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
