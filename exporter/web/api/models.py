"""The JSON shapes of the API, declared once.

The views, the WebSocket hub and the handlers build these types (so mypy checks every
field they write), and `/openapi.json` is generated from them (openapi.py), so the
document cannot drift from what is served. They are `TypedDict`s: at run time a plain
dict, built as cheaply as before (the hub builds a log entry per probe); pydantic only
reads them once, to write their JSON Schema.

Wire compatibility rules (the old backends' contract, pinned by tests/api): field names,
nesting and `null`s are as the old backends answered. Enum fields hold `StrEnum` members,
which JSON encodes as their value."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, get_args

from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema, with_config

# typing.TypedDict before 3.12 lacks what pydantic needs to read it (it says so and stops).
from typing_extensions import TypedDict

from ...model import Category, CircuitState, DisabledReason, MaintenanceState, Outcome, ProviderStatus, RetryReason

# ISO 8601, UTC (`2026-05-01T12:00:00.123456Z`): views.iso() writes them.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
NAME_MAX = 100
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=NAME_MAX), Field(description="a configured provider or endpoint name")]

SystemHealth = Literal["healthy", "degraded", "unknown"]
GroupStatus = Literal["online", "degraded", "unknown"]
QuotaStatus = Literal["normal", "warning", "critical", "exhausted", "unknown"]
KeyStatus = Literal["active", "invalid", "missing"]
ScheduleStatus = Literal["active", "paused", "unscheduled"]
FreshnessStatus = Literal["fresh", "aging", "stale", "unknown"]
HistorySource = Literal["memory", "prometheus"]
Severity = Literal["warning", "critical"]
ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "unprocessable",
    "internal_error",
    "bad_gateway",
    "error",
]


# ---------------------------------------------------------------- errors and the exporter's own routes


class Error(TypedDict):
    """Every 4xx (and the rare 500) of the API: a code, what is wrong, and the parameter or
    body field at fault (null when none is)."""

    error: ErrorCode
    detail: str
    field: str | None


class Ok(TypedDict):
    status: Literal["ok"]


class ReloadFailed(TypedDict):
    """The file has errors; the last good config keeps running."""

    status: Literal["error"]
    errors: list[str]


# ---------------------------------------------------------------- /api/status, /api/categories, /api/providers


class StatusCounts(TypedDict):
    """Providers by status; `total_apis` counts the providers that are probed (online +
    degraded + offline + unknown); disabled ones are counted apart."""

    total_apis: int
    online: int
    degraded: int
    offline: int
    unknown: int
    disabled: Annotated[int, Field(description="configured providers that are not probed (no key set, or turned off): not in total_apis")]


class Status(StatusCounts):
    avg_response_time_ms: float
    last_update: Timestamp
    system_health: Annotated[SystemHealth, Field(description="healthy when more than 80 % of the probed providers are online")]


class CategorySummary(TypedDict):
    name: Annotated[str, Field(description='for humans: "Market Data"')]
    category: Category
    total_sources: int
    online_sources: int
    online_ratio: float
    avg_response_time_ms: float
    rate_limited_count: Annotated[int, Field(description="providers whose last probe was rate limited")]
    last_updated: Timestamp
    status: Annotated[GroupStatus, Field(description="online when more than 80 % of its probed providers are online")]


class EndpointStatus(TypedDict):
    name: str
    status: Annotated[Outcome | None, Field(description="the last probe's outcome; null before the first")]
    healthy: bool
    response_time_ms: float | None
    http_code: int | None
    last_probe: Timestamp | None
    last_success: Timestamp | None
    data_age_seconds: float | None
    health_score: int | None


class ProviderRateLimit(TypedDict):
    """The provider's busiest quota."""

    used: float | None
    total: float | None
    period: Annotated[str | None, Field(description="the quota's scope (`weight_1m`, `budget`, ...)")]
    percentage: float | None


class ProviderMaintenance(TypedDict):
    """What the provider's own status source last said (issue 11; docs/maintenance.md)."""

    active: Annotated[bool, Field(description="in maintenance now: ongoing, or an announced window that has begun")]
    state: Annotated[MaintenanceState, Field(description="the source's own word: none, scheduled or ongoing")]
    start: Timestamp | None
    end: Timestamp | None
    detail: str


class Provider(TypedDict):
    id: str
    name: str
    category: Category
    status: ProviderStatus
    health_score: Annotated[int, Field(ge=0, le=100)] | None
    response_time_ms: float | None
    rate_limit: ProviderRateLimit
    last_fetch: Timestamp | None
    has_key: Annotated[bool, Field(description="an API key is set (not merely asked for)")]
    disabled_reason: Annotated[
        DisabledReason | None,
        Field(
            description="why a disabled provider is not probed: no_key (it needs one and none is set), config (enabled: false), flag (--disable); null otherwise"
        ),
    ]
    circuit_state: CircuitState
    description: str
    docs_url: str
    endpoints: list[EndpointStatus]
    maintenance: Annotated[ProviderMaintenance | None, Field(description="null without a status source, or while its last answer is too old")]


# ---------------------------------------------------------------- /api/logs, /api/failures


class LogEntry(TypedDict):
    """One probe (also the data of the `new_log_entry` WebSocket message)."""

    timestamp: Timestamp
    provider: str
    category: str
    endpoint: str
    status: Outcome
    response_time_ms: float | None
    http_code: int | None
    attempts: int
    retries: list[RetryReason]
    error_message: str | None
    key: Annotated[str | None, Field(description="the env var name of the API key used, never its value")]
    slow: bool


class LogPage(TypedDict):
    total: int
    page: int
    per_page: int
    pages: int
    logs: list[LogEntry]


class FailingProvider(TypedDict):
    provider: str
    failure_count: int


class Failure(TypedDict):
    timestamp: Timestamp
    provider: str
    endpoint: str
    error_type: Outcome
    error_message: str | None
    http_code: int | None
    retry_attempted: bool
    retries: list[RetryReason]


class Remediation(TypedDict):
    error_type: Outcome
    count: int
    suggestion: str


class Failures(TypedDict):
    """From the last 200 failed probes."""

    total: int
    error_type_distribution: Annotated[dict[str, int], Field(description="outcome to count")]
    top_failing_providers: list[FailingProvider]
    recent_failures: list[Failure]
    remediation_suggestions: list[Remediation]


# ---------------------------------------------------------------- /api/rate-limits, /api/config/keys


class RateLimit(TypedDict):
    """One quota seen in a provider's headers, or its client-side budget (`scope: budget`)."""

    provider: str
    category: str
    scope: str
    limit_type: str
    limit_value: float | None
    remaining: float | None
    current_usage: float | None
    percentage: float | None
    reset_at: Timestamp | None
    status: QuotaStatus


class KeyState(TypedDict):
    env: str
    set: bool
    valid: bool
    masked: Annotated[str | None, Field(description="at most the last 4 characters (`***9f3b`)")]


class KeyConfig(TypedDict):
    """Keys by env var name, masked; values are never shown."""

    provider: str
    category: str
    auth_type: str
    optional: bool
    key_masked: Annotated[str | None, Field(description="the key in use")]
    status: KeyStatus
    keys: list[KeyState]


@with_config(ConfigDict(extra="forbid"))
class KeyTestRequest(TypedDict):
    """`endpoint` defaults to the provider's first endpoint."""

    provider: Name
    endpoint: NotRequired[Name]


class KeyTestEntry(TypedDict):
    env: str
    set: bool
    masked: str | None
    valid: Annotated[bool | None, Field(description="null when the answer could not tell (timeout, 5xx, budget exhausted)")]
    outcome: Outcome | None
    http_code: int | None
    response_time_ms: float | None
    detail: str | None


class KeyTestResult(TypedDict):
    provider: str
    endpoint: str
    tested_at: Timestamp
    results: list[KeyTestEntry]


# ---------------------------------------------------------------- /api/schedule


class ScheduleRuns(TypedDict):
    on_time: int
    late: int
    missed: int


class EndpointSchedule(TypedDict):
    endpoint: str
    interval_seconds: float
    jitter_seconds: float
    last_run: Timestamp | None
    next_run: Timestamp | None
    scheduled: bool


class Schedule(TypedDict):
    provider: str
    category: str
    schedule: Annotated[str, Field(description="its endpoints' intervals (`60s, 5m`)")]
    last_run: Timestamp | None
    next_run: Timestamp | None
    on_time_percentage: float
    runs: ScheduleRuns
    status: ScheduleStatus
    endpoints: list[EndpointSchedule]


@with_config(ConfigDict(extra="forbid"))
class TriggerRequest(TypedDict, total=False):
    """No provider: every job; `endpoint` alone: that endpoint of every provider."""

    provider: Name
    endpoint: Name


class TriggerResult(TypedDict):
    status: Literal["triggered"]
    provider: str | None
    endpoint: str | None
    jobs: list[str]


# ---------------------------------------------------------------- /api/charts/*, /api/freshness


class ChartMeta(TypedDict):
    source: HistorySource
    hours: int
    provider: str | None
    warning: Annotated[str | None, Field(description="why the memory series is shown though PROMETHEUS_URL is set")]


class HealthSeries(TypedDict):
    """Parallel arrays, one entry per sample."""

    timestamps: list[Timestamp]
    success_rate: Annotated[list[float | None], Field(description="percent of the probes since the previous sample that succeeded")]
    online: list[int | None]
    degraded: list[int | None]
    offline: list[int | None]
    unknown: list[int | None]


class HealthHistory(ChartMeta, HealthSeries):
    """Parallel arrays, one entry per sample."""


class ComplianceSeries(TypedDict):
    """Parallel arrays, one entry per sample."""

    timestamps: list[Timestamp]
    compliance_percentage: Annotated[list[float | None], Field(description="percent of the scheduled runs since the previous sample that started on time")]
    on_time: list[int | None]
    late: list[int | None]
    missed: list[int | None]


class Compliance(ChartMeta, ComplianceSeries):
    """Parallel arrays, one entry per sample."""


class Freshness(TypedDict):
    """Age of an endpoint's newest data against its bound: the configured max age, or two
    probe intervals where there is none (`freshness_rule: false`)."""

    provider: str
    category: str
    endpoint: str
    fetch_time: Annotated[Timestamp | None, Field(description="the last success")]
    data_timestamp: Annotated[Timestamp | None, Field(description="read from the payload")]
    age_seconds: float | None
    staleness_minutes: float | None
    max_age_seconds: float
    ttl_minutes: float
    freshness_rule: bool
    status: FreshnessStatus


# ---------------------------------------------------------------- chain heads (issue 11)

HeadStatusName = Literal["ok", "lagging", "stuck", "syncing", "wrong_chain", "ahead", "unknown"]


class ChainEndpoint(TypedDict):
    """One RPC node of a chain against the chain's reference head, now."""

    provider: str
    endpoint: str
    head: Annotated[int | None, Field(description="last block number (or Solana slot) reported")]
    head_timestamp: Annotated[Timestamp | None, Field(description="that block's own time")]
    lag_blocks: Annotated[int | None, Field(description="reference minus this head; negative: ahead; null on another chain")]
    lag_seconds: float | None
    still_seconds: Annotated[float, Field(description="how long the head has not moved")]
    syncing: bool
    chain_id_mismatch: bool
    status: HeadStatusName
    latency_seconds: Annotated[float | None, Field(description="the last probe's latency")]
    error_rate: Annotated[float, Field(description="failed share of the probes that sent a request, since start or reload (0 to 1)")]
    throttled_rate: Annotated[float, Field(description="rate_limited share of those probes (0 to 1)")]
    penalty: Annotated[float | None, Field(description="selection penalty, lower is better (docs/chains.md); null when not eligible")]


class Chain(TypedDict):
    """A chain, its reference head and every endpoint on it; `best` is the eligible endpoint
    with the lowest penalty (eRPC's BALANCED weights, docs/chains.md)."""

    chain: str
    protocol: Literal["evm", "solana", "esplora"]
    id: str
    block_time_seconds: float
    reference_head: int | None
    reference_timestamp: Timestamp | None
    reporters: Annotated[int, Field(description="endpoints on the right chain, not syncing, with a recent head")]
    agreeing: Annotated[int, Field(description="of those, how many are within the chain's default lag bound of the reference")]
    best: Annotated[str | None, Field(description="provider/endpoint")]
    endpoints: list[ChainEndpoint]


# ---------------------------------------------------------------- WebSocket messages

EventType = Literal["status_update", "new_log_entry", "rate_limit_alert", "provider_status_change", "ping", "market_data"]
# Replies to one client, always delivered whatever it subscribed to.
ControlType = Literal["connection_established", "subscribed", "pong", "error"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
CONTROL_TYPES: tuple[ControlType, ...] = get_args(ControlType)


class Empty(TypedDict):
    pass


class StatusUpdateData(StatusCounts):
    avg_response_time_ms: float
    system_health: SystemHealth
    websocket_clients: int


class StatusChangeDetails(TypedDict):
    """The probe that changed the status."""

    endpoint: str
    outcome: Outcome
    http_code: int | None


class ProviderStatusChangeData(TypedDict):
    provider: str
    category: str
    old_status: ProviderStatus
    new_status: ProviderStatus
    health_score: int | None
    details: StatusChangeDetails


class RateLimitAlertData(TypedDict):
    """A quota crossed 80 % used (once per crossing); `critical` from 95 %."""

    provider: str
    scope: str
    percentage: float
    limit: float | None
    remaining: float | None
    reset_at: Timestamp | None
    severity: Severity


class ConnectionEstablishedData(TypedDict):
    client_id: int
    message: str
    types: list[EventType]


class SubscribedData(TypedDict):
    types: list[EventType]


class StatusUpdateMessage(TypedDict):
    """Every 10 s."""

    type: Literal["status_update"]
    data: StatusUpdateData
    timestamp: Timestamp


class NewLogEntryMessage(TypedDict):
    """Every probe."""

    type: Literal["new_log_entry"]
    data: LogEntry
    timestamp: Timestamp


class RateLimitAlertMessage(TypedDict):
    type: Literal["rate_limit_alert"]
    data: RateLimitAlertData
    timestamp: Timestamp


class ProviderStatusChangeMessage(TypedDict):
    """A provider's status changed."""

    type: Literal["provider_status_change"]
    data: ProviderStatusChangeData
    timestamp: Timestamp


class PingMessage(TypedDict):
    """Every 30 s."""

    type: Literal["ping"]
    data: Empty
    timestamp: Timestamp


class ConnectionEstablishedMessage(TypedDict):
    """On connect."""

    type: Literal["connection_established"]
    data: ConnectionEstablishedData
    timestamp: Timestamp


class SubscribedMessage(TypedDict):
    """The answer to subscribe and unsubscribe: the types now received."""

    type: Literal["subscribed"]
    data: SubscribedData
    timestamp: Timestamp


class PongMessage(TypedDict):
    type: Literal["pong"]
    data: Empty
    timestamp: Timestamp


class ErrorMessage(TypedDict):
    """A bad client message; the connection stays open."""

    type: Literal["error"]
    data: Error
    timestamp: Timestamp


# ---------------------------------------------------------------- feeds (web/api/feeds.py)
FeedReason = Literal["silence", "closed", "error", "ping_timeout", "gap"]
PriceSource = Literal["feed", "probe"]


class FeedPrice(TypedDict):
    symbol: str
    price: float
    changed_at: Annotated[Timestamp, Field(description="when the price last took a new value")]
    seen_at: Annotated[Timestamp, Field(description="when a message last carried it")]
    frozen: Annotated[bool, Field(description="unchanged for frozen_after while messages kept coming")]


class Feed(TypedDict):
    """One configured WebSocket market-data feed (docs/feeds.md)."""

    provider: str
    feed: str
    venue: str
    connected: bool
    connected_since: Timestamp | None
    messages: int
    last_message_at: Timestamp | None
    silent_seconds: Annotated[float | None, Field(description="since the last data message")]
    max_silence_seconds: float
    sequence_gaps: int
    malformed_messages: int
    last_malformed: str | None
    reconnects: dict[str, int]
    last_reconnect_reason: FeedReason | None
    lag_p50_seconds: Annotated[float | None, Field(description="upper bucket bound of the median lag since start")]
    lag_p99_seconds: float | None
    prices: list[FeedPrice]


class MarketPrice(TypedDict):
    symbol: Annotated[str, Field(description="the venue's symbol (feeds) or the extracted value's name (probes)")]
    price: float
    source: PriceSource
    provider: str
    stream: Annotated[str, Field(description="the feed's name, or the probed endpoint's")]
    at: Timestamp | None
    frozen: bool


class MarketDataData(TypedDict):
    """Prices that changed since the last market_data message (all of them in the first)."""

    prices: list[MarketPrice]


class MarketDataMessage(TypedDict):
    """At most once a second per client, on /ws/market_data (or any /ws route subscribed to it)."""

    type: Literal["market_data"]
    data: MarketDataData
    timestamp: Timestamp


# ---------------------------------------------------------------- end of feeds

# What the server sends: the `type` says which `data` comes with it.
WsMessage = Annotated[
    StatusUpdateMessage
    | MarketDataMessage
    | NewLogEntryMessage
    | RateLimitAlertMessage
    | ProviderStatusChangeMessage
    | PingMessage
    | ConnectionEstablishedMessage
    | SubscribedMessage
    | PongMessage
    | ErrorMessage,
    Field(discriminator="type"),
]


class SubscribeMessage(TypedDict):
    """Receive only these types (no `types`: all), or stop receiving them."""

    type: Literal["subscribe", "unsubscribe"]
    types: NotRequired[list[EventType]]


class ClientPingMessage(TypedDict):
    """`ping` is answered `pong`; a `pong` is ignored."""

    type: Literal["ping", "pong"]


# What a client may send.
WsClientMessage = SubscribeMessage | ClientPingMessage

# Any JSON object (the document itself).
JsonObject = dict[str, Any]


# --- shards (exporter/sharding.py) ---
class ShardView(TypedDict):
    """Which providers this exporter owns when the registry is split across shards."""

    shard: Annotated[int, Field(description="this exporter's shard, 0 .. total_shards-1")]
    total_shards: Annotated[int, Field(description="1 when not sharded")]
    providers: Annotated[list[str], Field(description="the providers this shard owns and probes")]
    disabled: Annotated[list[str], Field(description="the providers this shard owns but does not probe (no key set, or turned off)")]
    not_here: Annotated[int, Field(description="selected providers other shards own, plus those the selection leaves out")]


# ---- incidents (exporter/incidents/, web/api/incidents.py, docs/incidents.md) ----

IncidentStatusName = Literal["open", "resolved"]
IncidentSeverityName = Literal["critical", "warning", "info", "none"]
IncidentEventKind = Literal["opened", "alerts_firing", "alerts_resolved", "resolved", "explained", "summarized", "llm_failed", "notified", "notify_failed"]
IncidentAction = Literal["opened", "updated", "resolved", "repeated", "ignored"]
IncidentCause = Literal[
    "outage",
    "rate_limited",
    "key_rejected",
    "timeout",
    "network",
    "bad_payload",
    "client_error",
    "stale_data",
    "stale_node",
    "wrong_chain",
    "node_syncing",
    "budget_exhausted",
    "circuit_open",
    "maintenance",
    "slow",
    "feed",
    "exporter_down",
    "unknown",
]
# Alertmanager's label and annotation maps: bounded like the parser bounds them (incidents/payload.py).
_LabelMap = Annotated[
    dict[Annotated[str, StringConstraints(max_length=200)], Annotated[str, StringConstraints(max_length=4000)]],
    Field(max_length=64),
]
_AmTime = Annotated[str, StringConstraints(max_length=200), Field(description="RFC 3339; 0001-01-01T00:00:00Z means not set")]


class AlertmanagerAlert(TypedDict):
    """One alert of an Alertmanager webhook notification."""

    status: Literal["firing", "resolved"]
    labels: _LabelMap
    annotations: NotRequired[_LabelMap]
    startsAt: NotRequired[_AmTime]
    endsAt: NotRequired[_AmTime]
    generatorURL: NotRequired[Annotated[str, StringConstraints(max_length=4000)]]
    fingerprint: NotRequired[Annotated[str, StringConstraints(max_length=200)]]


class AlertmanagerNotification(TypedDict):
    """Alertmanager's webhook payload, version 4 (prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    version: Literal["4"]
    groupKey: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    truncatedAlerts: NotRequired[Annotated[int, Field(ge=0)]]
    status: Literal["firing", "resolved"]
    receiver: NotRequired[Annotated[str, StringConstraints(max_length=200)]]
    groupLabels: NotRequired[_LabelMap]
    commonLabels: NotRequired[_LabelMap]
    commonAnnotations: NotRequired[_LabelMap]
    externalURL: NotRequired[Annotated[str, StringConstraints(max_length=4000)]]
    alerts: Annotated[list[AlertmanagerAlert], Field(max_length=2000)]


class WebhookResult(TypedDict):
    status: Literal["ok"]
    action: Annotated[IncidentAction, Field(description="repeated: nothing new (Alertmanager's repeats); ignored: resolves of no open incident")]
    incident: Annotated[int | None, Field(description="the incident the notification went to")]


class IncidentExplanation(TypedDict):
    cause: IncidentCause
    title: str
    summary: Annotated[str, Field(description="the rule-based explanation: cause, evidence, what to do")]
    remediation: str
    facts: Annotated[list[str], Field(description="the facts at the time, one per line")]
    facts_source: Annotated[str, Field(description="exporter (in-process), exporter_api, prometheus, or none")]
    source: Literal["rules", "llm"]
    llm_summary: Annotated[str | None, Field(description="the LLM's summary, when one is configured and answered")]
    explained_at: Timestamp


class IncidentSummary(TypedDict):
    id: int
    title: str
    status: IncidentStatusName
    severity: IncidentSeverityName
    started_at: Timestamp
    updated_at: Timestamp
    resolved_at: Timestamp | None
    providers: list[str]
    endpoints: Annotated[list[str], Field(description="provider/endpoint")]
    categories: list[str]
    chains: list[str]
    alertnames: list[str]
    alerts_firing: int
    alerts_total: int
    notifications: Annotated[int, Field(description="notifications received, repeats included")]
    cause: IncidentCause | None
    summary: Annotated[str | None, Field(description="the explanation's text (the LLM's when there is one); null until explained")]


class IncidentPage(TypedDict):
    total: int
    page: int
    per_page: int
    pages: int
    incidents: list[IncidentSummary]


class IncidentAlert(TypedDict):
    fingerprint: str
    status: Literal["firing", "resolved"]
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: Timestamp | None
    ends_at: Timestamp | None


class IncidentEvent(TypedDict):
    at: Timestamp
    kind: IncidentEventKind
    detail: str
    alerts: Annotated[list[str], Field(description="the alerts the event is about (alertname provider/endpoint)")]


class IncidentDetailView(IncidentSummary):
    group_key: str
    receiver: str
    external_url: str
    explanation: IncidentExplanation | None
    alerts: list[IncidentAlert]
    timeline: list[IncidentEvent]
    events_dropped: Annotated[int, Field(description="changes past the timeline's bound, counted not kept")]


# ---- end of incidents
