"""Alertmanager webhook notifications (payload version 4) as the real binary sends them,
for the incident tests: the shape of prometheus/alertmanager notify/webhook/webhook.go
(`Message`: template.Data + version, groupKey, truncatedAlerts)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
GO_ZERO = "0001-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    # Go writes nanoseconds; the parser must take them.
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def alert(labels: dict[str, str], *, status: str = "firing", starts: float = T0, ends: float | None = None, **annotations: str) -> dict[str, Any]:
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": f"{labels.get('alertname')} summary",
            "description": f"{labels.get('alertname')} on {labels.get('provider', '')}",
            **annotations,
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends) if ends is not None else GO_ZERO,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=crypto_api_up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def provider_alert(alertname: str, provider: str, *, category: str = "exchanges", severity: str = "critical", **kw: Any) -> dict[str, Any]:
    labels = {"alertname": alertname, "provider": provider, "category": category, "severity": severity}
    labels.update({k: v for k, v in kw.items() if k in ("endpoint", "chain", "key")})
    return alert(labels, **{k: v for k, v in kw.items() if k not in ("endpoint", "chain", "key")})


def notification(alerts: list[dict[str, Any]], *, group: dict[str, str] | None = None, receiver: str = "incidents", truncated: int = 0) -> dict[str, Any]:
    group = group if group is not None else {k: alerts[0]["labels"][k] for k in ("category", "provider") if k in alerts[0]["labels"]}
    common = {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)}
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    key = '{}/{severity=~"critical|warning"}:{' + ", ".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}"
    return {
        "receiver": receiver,
        "status": status,
        "alerts": alerts,
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": truncated,
    }


def resolved(a: dict[str, Any], at: float) -> dict[str, Any]:
    return {**a, "status": "resolved", "endsAt": rfc3339(at)}


def storm(n: int = 50, alertname: str = "ProviderDown") -> dict[str, Any]:
    """n providers of one category down at once, grouped by category (as CategoryOutage's group is)."""
    alerts = [provider_alert(alertname, f"provider_{i:02d}", category="market_data") for i in range(n)]
    return notification(alerts, group={"category": "market_data"})
