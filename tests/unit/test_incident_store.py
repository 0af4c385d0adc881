"""The incident store and service: grouping, dedup, a storm, restarts, schema, retention,
filters, and located payload errors (issue 16, point 1)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.incidents.facts import NoFacts
from exporter.incidents.payload import PayloadError, parse_notification
from exporter.incidents.records import Action, EventKind, IncidentStatus, Severity
from exporter.incidents.service import IncidentService, IncidentSettings
from exporter.incidents.store import SCHEMA_VERSION, Filters, IncidentDb, Retention, SchemaError
from tests.incident_payloads import T0, alert, notification, provider_alert, resolved, storm


def ingest(db: IncidentDb, body: dict[str, Any], now: float = T0 + 60) -> Action:
    return db.ingest(parse_notification(body), now).action


@pytest.fixture
def db(tmp_path: Path) -> IncidentDb:
    return IncidentDb(str(tmp_path / "incidents.db"), clock=lambda: T0)


def test_firing_repeated_joined_resolved(db: IncidentDb) -> None:
    down = provider_alert("ProviderDown", "binance")
    first = notification([down])
    assert ingest(db, first) is Action.OPENED
    assert ingest(db, first, T0 + 120) is Action.REPEATED  # Alertmanager's repeat_interval
    assert ingest(db, first, T0 + 180) is Action.REPEATED
    errors = provider_alert("HighErrorRate", "binance", severity="warning")
    assert ingest(db, notification([down, errors]), T0 + 240) is Action.UPDATED
    assert ingest(db, notification([down, resolved(errors, T0 + 290)]), T0 + 300) is Action.UPDATED
    assert ingest(db, notification([resolved(down, T0 + 350)]), T0 + 360) is Action.RESOLVED

    total, rows = db.page(Filters(), 0, 10)
    assert total == 1
    (i,) = rows
    assert (i.status, i.severity, i.providers, i.categories, i.alertnames) == (
        IncidentStatus.RESOLVED,
        Severity.CRITICAL,
        ("binance",),
        ("exchanges",),
        ("HighErrorRate", "ProviderDown"),
    )
    assert (i.started_at, i.resolved_at, i.notifications, i.alerts_firing, i.alerts_total) == (T0, T0 + 360, 6, 0, 2)
    assert i.title == "2 alerts (HighErrorRate, ProviderDown): binance"
    detail = db.get(i.id)
    assert detail is not None
    assert [(e.kind, e.at) for e in detail.timeline] == [
        (EventKind.OPENED, T0 + 60),
        (EventKind.ALERTS_FIRING, T0 + 240),
        (EventKind.ALERTS_RESOLVED, T0 + 300),
        (EventKind.ALERTS_RESOLVED, T0 + 360),
        (EventKind.RESOLVED, T0 + 360),
    ]
    assert detail.timeline[0].alerts == ("ProviderDown binance",)
    assert detail.timeline[1].alerts == ("HighErrorRate binance",)


def test_after_resolve_a_late_repeat_is_ignored_and_a_new_firing_opens_a_new_incident(db: IncidentDb) -> None:
    down = provider_alert("ProviderDown", "okx")
    ingest(db, notification([down]))
    ingest(db, notification([resolved(down, T0 + 100)]), T0 + 100)
    assert ingest(db, notification([down]), T0 + 110) is Action.IGNORED  # a retry that arrived after the resolve
    assert ingest(db, notification([resolved(down, T0 + 100)]), T0 + 120) is Action.IGNORED
    again = provider_alert("ProviderDown", "okx", starts=T0 + 3600)
    assert ingest(db, notification([again]), T0 + 3700) is Action.OPENED
    total, rows = db.page(Filters(), 0, 10)
    assert total == 2 and [r.status for r in rows] == [IncidentStatus.OPEN, IncidentStatus.RESOLVED]


def test_a_grouped_storm_of_50_alerts_is_one_incident(db: IncidentDb) -> None:
    body = storm(50)
    assert ingest(db, body) is Action.OPENED
    assert ingest(db, body, T0 + 120) is Action.REPEATED
    total, (i,) = db.page(Filters(), 0, 10)
    assert total == 1 and i.alerts_total == 50 and i.alerts_firing == 50 and len(i.providers) == 50
    assert i.title == "ProviderDown: provider_00, provider_01, provider_02, provider_03 and 46 more"
    detail = db.get(i.id)
    assert detail is not None and len(detail.timeline) == 1  # one opening event, listing the alerts
    assert len(detail.timeline[0].alerts) == 50 and detail.timeline[0].detail == "opened by 50 firing alert(s)"


def test_a_storm_arriving_in_pieces_is_still_one_incident(db: IncidentDb) -> None:
    alerts = storm(50)["alerts"]
    for n in (10, 30, 50):  # Alertmanager's group_interval adds the late joiners
        ingest(db, notification(alerts[:n], group={"category": "market_data"}), T0 + n)
    total, (i,) = db.page(Filters(), 0, 10)
    assert total == 1 and i.alerts_total == 50 and i.notifications == 3


def test_restart_loses_nothing(tmp_path: Path) -> None:
    """Opened by one process, updated after a restart, resolved by another process."""
    path = str(tmp_path / "incidents.db")
    down = provider_alert("ProviderDown", "kraken")
    first = IncidentDb(path, clock=lambda: T0)
    assert ingest(first, notification([down])) is Action.OPENED
    first.close()

    second = IncidentDb(path, clock=lambda: T0)
    assert ingest(second, notification([down]), T0 + 100) is Action.REPEATED  # the restart did not forget it
    second.close()

    code = (
        "import sys; from exporter.incidents.store import IncidentDb; from exporter.incidents.payload import parse_notification; "
        "import json; db = IncidentDb(sys.argv[1], clock=lambda: float(sys.argv[3])); "
        "print(db.ingest(parse_notification(json.loads(sys.argv[2])), float(sys.argv[3])).action.value)"
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", code, path, json.dumps(notification([resolved(down, T0 + 200)])), str(T0 + 200)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "resolved", done.stderr

    third = IncidentDb(path, clock=lambda: T0)
    total, (i,) = third.page(Filters(), 0, 10)
    detail = third.get(i.id)
    assert detail is not None
    assert total == 1 and i.status is IncidentStatus.RESOLVED and i.notifications == 3
    assert [e.kind for e in detail.timeline] == [EventKind.OPENED, EventKind.ALERTS_RESOLVED, EventKind.RESOLVED]


def test_wal_and_schema_version(tmp_path: Path) -> None:
    path = str(tmp_path / "incidents.db")
    db = IncidentDb(path)
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.schema_version() == SCHEMA_VERSION == 1
    db.close()
    IncidentDb(path).close()  # opening again migrates nothing
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="schema version 99, newer than this release's 1"):
        IncidentDb(path)


def test_retention_by_count_and_age(tmp_path: Path) -> None:
    db = IncidentDb(str(tmp_path / "i.db"), Retention(max_age_seconds=86400, max_count=3), clock=lambda: T0)
    for i in range(5):
        a = provider_alert("ProviderDown", f"p{i}")
        ingest(db, notification([a]), T0 + i)
        ingest(db, notification([resolved(a, T0 + i)]), T0 + i)
    total, rows = db.page(Filters(), 0, 10)
    assert total == 3 and [r.providers for r in rows] == [("p4",), ("p3",), ("p2",)]
    ingest(db, notification([provider_alert("ProviderDown", "late")]), T0 + 2 * 86400)  # a new one prunes by age too
    total, rows = db.page(Filters(), 0, 10)
    assert [r.providers for r in rows] == [("late",)]
    assert db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1  # their timelines went with them


def test_filters(db: IncidentDb) -> None:
    ingest(db, notification([provider_alert("ProviderDown", "binance")]), T0 + 10)
    warn = provider_alert("DataStale", "okx", severity="warning")
    ingest(db, notification([warn]), T0 + 20)
    ingest(db, notification([resolved(warn, T0 + 30)]), T0 + 30)
    ingest(db, notification([alert({"alertname": "ExporterDown", "severity": "critical", "job": "crypto-api-exporter"})], group={}), T0 + 40)

    def ids(**kw: Any) -> list[tuple[str, ...]]:
        return [r.providers or r.alertnames for r in db.page(Filters(**kw), 0, 10)[1]]

    assert ids(status=IncidentStatus.OPEN) == [("ExporterDown",), ("binance",)]
    assert ids(status=IncidentStatus.RESOLVED) == [("okx",)]
    assert ids(provider="okx") == [("okx",)]
    assert ids(severity=Severity.WARNING) == [("okx",)]
    assert ids(since=T0 + 25) == [("ExporterDown",), ("okx",)]
    assert db.page(Filters(), 1, 1)[0] == 3 and len(db.page(Filters(), 1, 1)[1]) == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.update(groupKey=""), "groupKey"),
        (lambda b: b.update(status="pending"), "status"),
        (lambda b: b.update(alerts={}), "alerts"),
        (lambda b: b["alerts"][0].update(status="nope"), "alerts[0].status"),
        (lambda b: b["alerts"][0].update(labels={"a": 1}), "alerts[0].labels"),
        (lambda b: b["alerts"][0].update(labels={f"l{i}": "v" for i in range(65)}), "alerts[0].labels"),
        (lambda b: b["alerts"][0]["annotations"].update(description="x" * 5000), "alerts[0].annotations"),
        (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
        (lambda b: b.update(alerts=[b["alerts"][0]] * 2001), "alerts"),
    ],
)
def test_bad_payloads_name_the_field(mutate: Any, field: str) -> None:
    body = notification([provider_alert("ProviderDown", "binance")])
    mutate(body)
    with pytest.raises(PayloadError) as e:
        parse_notification(body)
    assert e.value.field == field


def test_times_as_go_writes_them() -> None:
    n = parse_notification(notification([provider_alert("ProviderDown", "binance")]))
    (a,) = n.alerts
    assert a.starts_at == pytest.approx(T0) and a.ends_at is None  # 0001-01-01T00:00:00Z: not set
    body = notification([provider_alert("ProviderDown", "binance")])
    body["alerts"][0].update(startsAt="2026-02-31T00:00:00Z")
    del body["alerts"][0]["fingerprint"]
    (b,) = parse_notification(body).alerts
    assert b.starts_at is None and len(b.fingerprint) == 16  # no real instant; a fingerprint made from the labels


async def test_service_restart_keeps_incidents_and_explains_the_unexplained(tmp_path: Path) -> None:
    settings = IncidentSettings(db=str(tmp_path / "incidents.db"), settle_seconds=3600)
    first = IncidentService(settings, NoFacts(), clock=lambda: T0 + 60)
    await first.start()
    result = await first.receive(storm(50))
    assert result.action is Action.OPENED and first.open_incidents == 1
    await first.stop()  # stopped during the settle wait: never explained

    second = IncidentService(settings, NoFacts(), clock=lambda: T0 + 120)
    await second.start()  # explains what the first did not get to
    assert second.open_incidents == 1
    await second.idle()
    (brief,) = await second.recent_incidents(5)
    assert brief.id == result.incident_id and brief.status is IncidentStatus.OPEN and len(brief.providers) == 50
    assert brief.explanation is not None and brief.explanation.startswith("Cause unknown from the facts at hand")
    assert (await second.receive(storm(50))).action is Action.REPEATED
    await second.stop()


def test_the_timeline_is_bounded(db: IncidentDb, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter import limits

    monkeypatch.setattr(limits, "INCIDENT_EVENTS", 3)
    alerts = [provider_alert("EndpointDown", "binance", endpoint=f"e{i}") for i in range(6)]
    for n in range(1, 7):  # each notification adds one alert: one event each
        ingest(db, notification(alerts[:n]), T0 + n)
    detail = db.get(1)
    assert detail is not None and len(detail.timeline) == 3 and detail.incident.events_dropped == 3
    assert detail.incident.alerts_total == 6  # the alerts themselves are all kept


async def test_a_database_that_cannot_be_opened_fails_start_cleanly(tmp_path: Path) -> None:
    service = IncidentService(IncidentSettings(db=str(tmp_path / "missing" / "incidents.db")), NoFacts())
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        await service.start()
    assert service.store._executor is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--llm.base-url", "ftp://llm"], "--llm.base-url: an http(s) URL"),
        (["--incidents.retention-days", "0"], "--incidents.retention-days and --incidents.retention-count must be positive"),
        (["--llm.timeout", "0"], "--llm.timeout > 0"),
    ],
)
def test_bad_flags_are_refused_naming_them(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from exporter.cli import main

    with pytest.raises(SystemExit) as e:
        main(["incidents", *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err
