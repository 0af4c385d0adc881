"""The incident service's records: what the store keeps and the API and the status page read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """The `severity` label of the rules (STYLE.md: critical, warning, info); `none` when absent."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    NONE = "none"

    @property
    def rank(self) -> int:
        return {"critical": 3, "warning": 2, "info": 1, "none": 0}[self.value]

    @classmethod
    def of(cls, label: str | None) -> Severity:
        try:
            return cls((label or "").strip().lower())
        except ValueError:
            return cls.NONE


class EventKind(StrEnum):
    OPENED = "opened"
    ALERTS_FIRING = "alerts_firing"  # alerts joined the incident (or fired again)
    ALERTS_RESOLVED = "alerts_resolved"
    RESOLVED = "resolved"
    EXPLAINED = "explained"  # the rule explanation, with the facts of that moment
    SUMMARIZED = "summarized"  # the LLM's summary arrived
    LLM_FAILED = "llm_failed"  # the LLM path failed; the rule text stands
    NOTIFIED = "notified"  # the Slack follow-up was sent
    NOTIFY_FAILED = "notify_failed"


class Action(StrEnum):
    """What one webhook notification did."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"
    REPEATED = "repeated"  # nothing new: Alertmanager's repeat_interval, or a retry
    IGNORED = "ignored"  # resolved alerts of no known incident, or a late repeat of a resolved one


@dataclass(frozen=True)
class Event:
    at: float
    kind: EventKind
    detail: str
    alerts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredAlert:
    fingerprint: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float | None
    ends_at: float | None


@dataclass(frozen=True)
class Incident:
    id: int
    group_key: str
    status: IncidentStatus
    severity: Severity
    title: str
    receiver: str
    external_url: str
    started_at: float
    updated_at: float
    resolved_at: float | None
    notifications: int
    providers: tuple[str, ...]
    endpoints: tuple[str, ...]  # provider/endpoint
    categories: tuple[str, ...]
    chains: tuple[str, ...]
    alertnames: tuple[str, ...]
    alerts_firing: int
    alerts_total: int
    explanation: Mapping[str, Any] | None = None  # explain.Explanation.to_json(), None until explained
    events_dropped: int = 0


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    alerts: tuple[StoredAlert, ...]
    timeline: tuple[Event, ...]


@dataclass(frozen=True)
class IngestResult:
    action: Action
    incident_id: int | None = None
    changed_fingerprints: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IncidentBrief:
    """One incident as the status page shows it (`IncidentService.recent_incidents`)."""

    id: int
    title: str
    status: IncidentStatus
    severity: Severity
    started_at: float  # unix seconds
    resolved_at: float | None
    providers: tuple[str, ...]
    explanation: str | None  # the summary text (the LLM's when it answered, else the rules'); None until explained
