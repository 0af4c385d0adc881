"""Every metric family the exporter serves, in one place: name, type, HELP, label names,
buckets and the closed sets its labels take.

The names are the public API (DESIGN.md, "Metrics contract"): dashboards, alerts and
users' PromQL depend on them; never rename. The renderer (metrics.py), the server's own
request metrics and the JSON API's PromQL read them from here, and the tests compare
this table with the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .model import CircuitState, Outcome, ProviderStatus, RetryReason, ScheduleResult

PREFIX = "crypto_api_"


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Family:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()

    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type.value}\n"

    @property
    def base_name(self) -> str:
        """The name prometheus-client wants for a counter: without `_total`."""
        return self.name.removesuffix("_total")


def _f(name: str, type_: MetricType, help_: str, *labels: str) -> Family:
    return Family(PREFIX + name, type_, help_, labels)


G, C, H = MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM
EP = ("provider", "category", "endpoint")
PE = ("provider", "endpoint")

# Buckets. Probe latencies: from a fast CDN answer (25 ms) to a timeout (30 s).
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Schedule delays: how late a timer fired, from a loop tick to a missed run.
DELAY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)

# Closed label sets: every value a label can take, in exposition order.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
CIRCUIT_STATES: tuple[CircuitState, ...] = tuple(CircuitState)
PROVIDER_STATUSES: tuple[ProviderStatus, ...] = tuple(ProviderStatus)
SCHEDULE_RESULTS: tuple[ScheduleResult, ...] = tuple(ScheduleResult)
RETRY_REASONS: tuple[RetryReason, ...] = tuple(RetryReason)

# The contract, in exposition order.
UP = _f("up", G, "1 if the last completed scheduled probe of the endpoint succeeded.", *EP)
DURATION = _f("probe_duration_seconds", H, "Latency of each scheduled probe that got a response.", *EP)
PROBES = _f("probes_total", C, "Scheduled probes by outcome.", *EP, "outcome")
CODES = _f("http_responses_total", C, "HTTP status codes seen, one per attempt.", *PE, "code")
RETRIES = _f("retries_total", C, "Retries made, by reason.", *PE, "reason")
LAST_PROBE = _f("last_probe_timestamp_seconds", G, "When the last scheduled probe finished (unix seconds).", *PE)
LAST_SUCCESS = _f("last_success_timestamp_seconds", G, "When the last successful probe finished (unix seconds).", *PE)
DATA_AGE = _f("data_age_seconds", G, "Age of the newest data at scrape time: the payload's timestamp, else the last success.", *PE)
MAX_AGE = _f("data_max_age_seconds", G, "The configured freshness bound of the endpoint.", *PE)
ZSCORE = _f("latency_anomaly_zscore", G, "z-score of the last latency against the endpoint's recent latencies.", *PE)
VALUE = _f("value", G, "Numbers extracted from the last completed probe's payload.", *PE, "name")
RL_LIMIT = _f("rate_limit_limit", G, "Quota size per scope: a provider header's window, or 'budget' for the exporter's own budget.", "provider", "scope")
RL_REMAINING = _f("rate_limit_remaining", G, "Quota left per scope, as last reported.", "provider", "scope")
RL_RESET = _f("rate_limit_reset_timestamp_seconds", G, "When the quota resets (unix seconds).", "provider", "scope")
CIRCUIT = _f("circuit_breaker_state", G, "Circuit breaker state per provider: 1 for the current state.", "provider", "state")
STATUS = _f("provider_status", G, "Provider status from its endpoints' last probes: 1 for the current status.", "provider", "category", "status")
DELAY = _f("schedule_delay_seconds", H, "How late each scheduled probe started against its plan.", "provider")
RUNS = _f("schedule_runs_total", C, "Scheduled runs by result: on_time, late or missed.", "provider", "result")
KEYS = _f("key_valid", G, "1 if the API key in this env var is set and not rejected by the provider.", "provider", "key")
INFO = _f(
    "provider_info",
    G,
    'Configured providers; enabled="false" for those not probed (status disabled: no key set, or turned off).',
    "provider",
    "category",
    "base_url",
    "requires_key",
    "enabled",
)
RELOAD_OK = _f("config_last_reload_successful", G, "1 if the last load or reload of providers.yaml worked.")
RELOAD_AT = _f("config_last_reload_success_timestamp_seconds", G, "When providers.yaml was last loaded successfully (unix seconds).")

# ---- issue 11: maintenance and frozen values (DESIGN.md, "Contract additions") ----
VALUE_CHANGED = _f("value_last_change_timestamp_seconds", G, "When the extracted value last changed, by the exporter's clock (unix seconds).", *PE, "name")
MAINTENANCE = _f("provider_maintenance", G, "1 while the provider's own status source says maintenance (announced window begun, or ongoing).", "provider")
MAINTENANCE_START = _f("provider_maintenance_start_timestamp_seconds", G, "Start of the announced or ongoing maintenance window (unix seconds).", "provider")
MAINTENANCE_END = _f("provider_maintenance_end_timestamp_seconds", G, "Announced end of the maintenance window (unix seconds).", "provider")
MAINTENANCE_FAMILIES: tuple[Family, ...] = (VALUE_CHANGED, MAINTENANCE, MAINTENANCE_START, MAINTENANCE_END)
# ---- end issue 11 ----

CONTRACT: tuple[Family, ...] = (
    UP, DURATION, PROBES, CODES, RETRIES, LAST_PROBE, LAST_SUCCESS, DATA_AGE, MAX_AGE, ZSCORE, VALUE,
    RL_LIMIT, RL_REMAINING, RL_RESET, CIRCUIT, STATUS, DELAY, RUNS, KEYS, INFO, RELOAD_OK, RELOAD_AT,
    *MAINTENANCE_FAMILIES,
)  # fmt: skip

# ---- chain heads (issue 11; DESIGN.md "Contract additions"): rendered from exporter/chains.py
PEC = ("provider", "endpoint", "chain")
CHAIN_HEAD = _f("chain_head_block", G, "Last head (block number, or slot) the node reported.", *PEC)
CHAIN_HEAD_TIME = _f("chain_head_timestamp_seconds", G, "The head block's own timestamp (unix seconds).", *PEC)
CHAIN_HEAD_CHANGED = _f("chain_head_last_change_timestamp_seconds", G, "When this node's head last moved (unix seconds).", *PEC)
CHAIN_LAG_BLOCKS = _f("chain_head_lag_blocks", G, "Reference head minus this node's head (negative: ahead of it).", *PEC)
CHAIN_LAG_SECONDS = _f("chain_head_lag_seconds", G, "Reference head's timestamp minus this node's head's.", *PEC)
CHAIN_REFERENCE = _f("chain_reference_head_block", G, "The chain's reference head: the second-highest head on the right chain.", "chain")
CHAIN_ID_MISMATCH = _f("chain_id_mismatch", G, "1 when the node reports another chain id.", *PEC)
CHAIN_SYNCING = _f("chain_syncing", G, "1 when the node says it is syncing.", *PEC)
CHAIN_HEADS: tuple[Family, ...] = (
    CHAIN_HEAD, CHAIN_HEAD_TIME, CHAIN_HEAD_CHANGED, CHAIN_LAG_BLOCKS, CHAIN_LAG_SECONDS, CHAIN_REFERENCE, CHAIN_ID_MISMATCH, CHAIN_SYNCING,
)  # fmt: skip
# ---- end chain heads

# The server's own metrics, under `crypto_api_exporter_` (not the probes' contract).
# Its HTTP requests: exporter.traffic's OpenTelemetry names (traffic/semconv.py), which
# replaced crypto_api_exporter_requests_total and _request_duration_seconds (docs/metrics.md).
EXPORTER_WS_CLIENTS = _f("exporter_websocket_clients", G, "WebSocket clients connected to /ws, /ws/live and /ws/master.")
EXPORTER_WS_MESSAGES = _f("exporter_websocket_messages_total", C, "Event messages queued for WebSocket clients, by type.", "type")
EXPORTER_WS_DROPPED = _f("exporter_websocket_dropped_messages_total", C, "Event messages dropped because a client's queue was full (slow client).", "type")

# Shards (exporter/sharding.py): which one this process is; 0 of 1 when not sharded.
EXPORTER_SHARD_INFO = _f("exporter_shard_info", G, "1; which shard of the providers this exporter owns (0 of 1 when not sharded).", "shard", "total_shards")

SERVER: tuple[Family, ...] = (EXPORTER_WS_CLIENTS, EXPORTER_WS_MESSAGES, EXPORTER_WS_DROPPED, EXPORTER_SHARD_INFO)

# ---------------------------------------------------------------- feeds (DESIGN.md, "Contract additions")
# Long-lived WebSocket market-data feeds (exporter/feeds/, docs/feeds.md). Labels: the
# feed's provider and configured name; `reason` takes FEED_RECONNECT_REASONS only.
FP = ("provider", "feed")
# Event-time lag: from a co-located venue (5 ms) to a feed minutes behind.
FEED_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FEED_RECONNECT_REASONS = ("silence", "closed", "error", "ping_timeout", "gap")
FEED_CONNECTED = _f("feed_connected", G, "1 while the feed is connected and subscribed.", *FP)
FEED_MESSAGES = _f("feed_messages_total", C, "Data messages received on the feed (heartbeats and acks not counted).", *FP)
FEED_LAST_MESSAGE = _f("feed_last_message_timestamp_seconds", G, "When the feed's last data message arrived (unix seconds).", *FP)
FEED_RECONNECTS = _f(
    "feed_reconnects_total", C, "Reconnects of the feed by why the connection ended: silence, closed, error, ping_timeout, gap.", *FP, "reason"
)
FEED_GAPS = _f("feed_sequence_gaps_total", C, "Skipped or out-of-order sequence numbers seen on the feed.", *FP)
FEED_LAG = _f("feed_message_lag_seconds", H, "Arrival time minus the venue's own event time of each data message.", *FP)
FEEDS: tuple[Family, ...] = (FEED_CONNECTED, FEED_MESSAGES, FEED_LAST_MESSAGE, FEED_RECONNECTS, FEED_GAPS, FEED_LAG)
# Beyond the contract (docs/feeds.md): malformed frames, and the latest price per symbol
# with when it last changed, which is what frozen-price detection reads.
FEED_MALFORMED = _f(
    "feed_malformed_messages_total", C, "Frames from the venue that were not a message it documents (bad JSON, missing fields); the connection stays.", *FP
)
FEED_PRICE = _f("feed_price", G, "Latest price seen on the feed, per venue symbol.", *FP, "symbol")
FEED_PRICE_CHANGED = _f("feed_price_last_change_timestamp_seconds", G, "When the feed's price for the symbol last changed (unix seconds).", *FP, "symbol")
FEEDS_EXTRA: tuple[Family, ...] = (FEED_MALFORMED, FEED_PRICE, FEED_PRICE_CHANGED)
# ---------------------------------------------------------------- end of feeds

# ---------------------------------------------------------------- incidents (exporter/incidents/, docs/incidents.md)
# The incident service's own counts: served by the exporter when it runs it in-process,
# and by `crypto-api-exporter incidents` on its /metrics.
INCIDENTS_OPEN = _f("incidents_open", G, "Incidents open now (Alertmanager notifications grouped by groupKey, not yet resolved).")
INCIDENT_NOTIFICATIONS = _f(
    "incident_notifications_total",
    C,
    "Alertmanager notifications received by the incident service, by what they did: opened, updated, resolved, repeated, ignored.",
    "action",
)
INCIDENT_LLM_REQUESTS = _f(
    "incident_llm_requests_total", C, "LLM summary requests of the incident service, by result: ok, or failed (the rule text stands).", "result"
)
INCIDENTS: tuple[Family, ...] = (INCIDENTS_OPEN, INCIDENT_NOTIFICATIONS, INCIDENT_LLM_REQUESTS)
# ---------------------------------------------------------------- end of incidents
