"""The records that flow from the prober to every consumer.

One `ProbeResult` per probe, immutable; metrics, state, events and logs read it and
nothing downstream re-does HTTP or re-classifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    RATE_LIMITED = "rate_limited"
    AUTH_ERROR = "auth_error"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    BAD_PAYLOAD = "bad_payload"
    STALE = "stale"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET_EXHAUSTED = "budget_exhausted"

    @property
    def skipped(self) -> bool:
        """True for outcomes decided before any request was sent."""
        return self in (Outcome.CIRCUIT_OPEN, Outcome.BUDGET_EXHAUSTED)


class Category(StrEnum):
    MARKET_DATA = "market_data"
    EXPLORERS = "explorers"
    RPC_NODES = "rpc_nodes"
    NEWS = "news"
    SENTIMENT = "sentiment"
    ONCHAIN = "onchain"
    EXCHANGES = "exchanges"


class ProbeKind(StrEnum):
    """How an endpoint is probed: one module per kind in `exporter/probes/`."""

    HTTP = "http"
    CHAIN_HEAD = "chain_head"  # an RPC node's head against its chain's consensus (exporter/chains.py)


class ScheduleResult(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    MISSED = "missed"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class ProviderStatus(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    UNKNOWN = "unknown"
    DISABLED = "disabled"  # configured but not probed (DisabledReason says why): never down


class DisabledReason(StrEnum):
    """Why a configured provider is not probed."""

    NO_KEY = "no_key"  # it needs a key and none of its env vars is set
    CONFIG = "config"  # `enabled: false` in the file
    FLAG = "flag"  # --disable on the command line


class RetryReason(StrEnum):
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    CONNECTION_ERROR = "connection_error"
    KEY_ROTATION = "key_rotation"


@dataclass(frozen=True, slots=True)
class QuotaObservation:
    """One quota as seen in a response's headers, or the client-side budget."""

    scope: str
    limit: float | None
    remaining: float | None
    reset_at: float | None  # unix seconds


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What a probe learnt about one API key, named by its env var (never its value)."""

    env: str
    valid: bool


@dataclass(frozen=True, slots=True)
class ProbeResult:
    provider: str
    category: str
    endpoint: str
    outcome: Outcome
    started_at: float  # unix seconds
    finished_at: float  # unix seconds
    duration: float | None = None  # seconds of the last attempt that got a response
    status_code: int | None = None  # of the last attempt
    attempts: int = 0
    http_codes: tuple[int, ...] = ()  # one per attempt that got a response
    retries: tuple[RetryReason, ...] = ()
    detail: str = ""  # short, secret-free reason for humans; never a label
    quotas: tuple[QuotaObservation, ...] = ()
    data_timestamp: float | None = None  # unix seconds read from the payload
    values: tuple[tuple[str, float], ...] = ()
    key_env: str | None = None  # env var name of the key used by the last attempt
    key_checks: tuple[KeyCheck, ...] = ()
    circuit_state: CircuitState = CircuitState.CLOSED
    pause_until: float | None = None  # unix seconds; set when the provider asked us to back off
    slow: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def made_request(self) -> bool:
        return not self.outcome.skipped

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.endpoint)


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """How one scheduled run went against its plan (written by the scheduler)."""

    provider: str
    endpoint: str
    delay: float | None  # seconds late; None for a missed run
    result: ScheduleResult
    count: int = 1  # runs this record stands for: a loop stalled for N intervals missed N


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One endpoint's place in the schedule, as the scheduler reports it."""

    provider: str
    endpoint: str
    interval: float
    jitter: float
    next_run_at: float | None  # unix seconds; None while not armed


@dataclass(frozen=True, slots=True)
class KeyTest:
    """One configured key tested on demand: by env var name, masked, never its value."""

    env: str
    is_set: bool
    masked: str | None
    result: ProbeResult | None  # None when the env var is not set
