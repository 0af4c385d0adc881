"""Alertmanager's webhook notification (payload version 4), parsed and checked.

The shape, as Alertmanager sends it (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config;
the struct is `Message` in prometheus/alertmanager notify/webhook/webhook.go: the template
`Data` plus `version`, `groupKey` and `truncatedAlerts`; a sample v4 payload is in the
alertmanager-webhook-types crate, assets/sample-v4-payload.json):

    {"version": "4", "groupKey": "{}/{severity=\"critical\"}:{provider=\"binance\"}",
     "truncatedAlerts": 0, "status": "firing" | "resolved", "receiver": "incidents",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "http://alertmanager:9093",
     "alerts": [{"status": "firing" | "resolved", "labels": {...}, "annotations": {...},
                 "startsAt": RFC 3339, "endsAt": RFC 3339 ("0001-01-01T00:00:00Z": not set),
                 "generatorURL": "...", "fingerprint": "1a30ba71cca2921f"}]}

tests/stack/test_incidents_e2e.py checks it against the real binary. Every mistake is a
`PayloadError` naming the field (`alerts[3].labels`): the route answers it as a 400."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .. import limits

VERSION = "4"
GROUP_KEY_CHARS = 4000
NAME_CHARS = limits.API_STRING_CHARS
# RFC 3339 as Go writes it: up to nanoseconds, `Z` or an offset.
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")
_GO_ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z: "not set"


class PayloadError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float | None  # unix seconds; None when Alertmanager sent no usable time
    ends_at: float | None
    fingerprint: str
    generator_url: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    version: str
    group_key: str
    status: AlertStatus
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0


def parse_time(text: str) -> float | None:
    """RFC 3339 to unix seconds; None for Go's zero time and for a string that is no
    real instant (a 31 February): Alertmanager never sends one, and a time is a fact
    the incident can do without, not a reason to lose the notification."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    if int(year) <= _GO_ZERO_YEAR:
        return None
    try:
        iso = f"{year}-{month}-{day}T{hour}:{minute}:{min(int(second), 59):02d}{'.' + fraction[:6] if fraction else ''}"
        moment = datetime.fromisoformat(iso + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError:
        return None
    return moment.astimezone(UTC).timestamp()


def _clean(text: str) -> str:
    """JSON may carry lone surrogates (`"\\udaa9"`) that no UTF-8 store takes: replaced, not refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _str(body: Mapping[str, Any], key: str, where: str, *, required: bool = True, max_chars: int = limits.INCIDENT_LABEL_CHARS) -> str:
    if key not in body and not required:
        return ""
    value = body.get(key)
    if not isinstance(value, str):
        raise PayloadError(f"{where}{key}", "must be a string" if value is not None else "required field is missing")
    if len(value) > max_chars:
        raise PayloadError(f"{where}{key}", f"longer than {max_chars} characters")
    return _clean(value)


def _labels(body: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> dict[str, str]:
    if key not in body:
        if required:
            raise PayloadError(f"{where}{key}", "required field is missing")
        return {}
    value = body[key]
    if not isinstance(value, dict):
        raise PayloadError(f"{where}{key}", "must be an object of strings")
    if len(value) > limits.INCIDENT_LABELS:
        raise PayloadError(f"{where}{key}", f"more than {limits.INCIDENT_LABELS} entries")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(text, str):
            raise PayloadError(f"{where}{key}", f"{str(name)[:60]!r} must be a string")
        if len(name) > NAME_CHARS or len(text) > limits.INCIDENT_LABEL_CHARS:
            raise PayloadError(f"{where}{key}", f"{str(name)[:60]!r} is too long (names {NAME_CHARS}, values {limits.INCIDENT_LABEL_CHARS} characters)")
        out[_clean(name)] = _clean(text)
    return out


def _status(body: Mapping[str, Any], where: str) -> AlertStatus:
    value = body.get("status")
    try:
        return AlertStatus(str(value))
    except ValueError:
        raise PayloadError(f"{where}status", f"must be firing or resolved, got {str(value)[:40]!r}") from None


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stand-in for Alertmanager's fingerprint (a hash of the label set) when a sender
    leaves it out: the same labels always give the same one."""
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _alert(item: Any, i: int) -> Alert:
    where = f"alerts[{i}]."
    if not isinstance(item, dict):
        raise PayloadError(f"alerts[{i}]", "must be an object")
    labels = _labels(item, "labels", where, required=True)
    fingerprint = _str(item, "fingerprint", where, required=False, max_chars=NAME_CHARS) or fingerprint_of(labels)
    return Alert(
        status=_status(item, where),
        labels=labels,
        annotations=_labels(item, "annotations", where),
        starts_at=parse_time(_str(item, "startsAt", where, required=False, max_chars=NAME_CHARS)),
        ends_at=parse_time(_str(item, "endsAt", where, required=False, max_chars=NAME_CHARS)),
        fingerprint=fingerprint,
        generator_url=_str(item, "generatorURL", where, required=False),
    )


def parse_notification(body: Any) -> Notification:
    """The notification in `body` (decoded JSON), or a PayloadError naming the field."""
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object (an Alertmanager webhook notification)")
    version = _str(body, "version", "", max_chars=NAME_CHARS)
    if version != VERSION:
        raise PayloadError("version", f"only Alertmanager's webhook payload version {VERSION} is understood, got {version[:20]!r}")
    group_key = _str(body, "groupKey", "", max_chars=GROUP_KEY_CHARS)
    if not group_key:
        raise PayloadError("groupKey", "must not be empty")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "must be a list")
    if len(alerts) > limits.INCIDENT_WEBHOOK_ALERTS:
        raise PayloadError("alerts", f"more than {limits.INCIDENT_WEBHOOK_ALERTS} alerts: set max_alerts on the Alertmanager receiver")
    truncated = body.get("truncatedAlerts", 0)
    if isinstance(truncated, float) and truncated.is_integer():  # JSON Schema's integer takes 3.0
        truncated = int(truncated)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts", "must be a non-negative integer")
    return Notification(
        version=version,
        group_key=group_key,
        status=_status(body, ""),
        receiver=_str(body, "receiver", "", required=False, max_chars=NAME_CHARS),
        group_labels=_labels(body, "groupLabels", ""),
        common_labels=_labels(body, "commonLabels", ""),
        common_annotations=_labels(body, "commonAnnotations", ""),
        external_url=_str(body, "externalURL", "", required=False),
        alerts=tuple(_alert(a, i) for i, a in enumerate(alerts)),
        truncated_alerts=truncated,
    )
