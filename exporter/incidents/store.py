"""Incidents in SQLite (the standard library's sqlite3): WAL, a versioned schema with
migrations, retention by age and count.

`IncidentDb` is synchronous and owns its connection; `IncidentStore` runs every call of
it on one dedicated thread (a single writer: SQLite takes one at a time anyway, and the
event loop never waits on disk). Grouping happens inside one transaction per
notification, so a crash between two statements never leaves half an incident."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from .. import limits
from .payload import Alert, AlertStatus, Notification
from .records import Action, Event, EventKind, Incident, IncidentDetail, IncidentStatus, IngestResult, Severity, StoredAlert

log = structlog.get_logger()
T = TypeVar("T")
MEMORY = ":memory:"
EVENT_ALERTS_SHOWN = 50  # alert names listed in one timeline event; the rest are counted

# Each entry moves the schema one version up; never edit a released one, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_key TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        receiver TEXT NOT NULL,
        external_url TEXT NOT NULL,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        resolved_at REAL,
        notifications INTEGER NOT NULL,
        providers TEXT NOT NULL,
        endpoints TEXT NOT NULL,
        categories TEXT NOT NULL,
        chains TEXT NOT NULL,
        alertnames TEXT NOT NULL,
        alerts_firing INTEGER NOT NULL,
        alerts_total INTEGER NOT NULL,
        explanation TEXT,
        events INTEGER NOT NULL DEFAULT 0,
        events_dropped INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX incidents_by_group ON incidents (group_key, status);
    CREATE INDEX incidents_by_update ON incidents (updated_at);
    CREATE TABLE alerts (
        incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        starts_at REAL,
        ends_at REAL,
        PRIMARY KEY (incident_id, fingerprint)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        alerts TEXT NOT NULL
    );
    CREATE INDEX events_by_incident ON events (incident_id, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(ValueError):
    """The database file was written by a newer release (or is not ours)."""


@dataclass(frozen=True)
class Retention:
    max_age_seconds: float = 90 * 86400.0  # resolved incidents older than this go
    max_count: int = 10_000  # the newest this many incidents stay


@dataclass(frozen=True)
class Filters:
    status: IncidentStatus | None = None
    provider: str | None = None
    severity: Severity | None = None
    since: float | None = None  # unix seconds: incidents updated at or after


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    found = int(row[0]) if row else 0
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the incident database is at schema version {found}, newer than this release's {SCHEMA_VERSION}: upgrade, or use another --incidents.db"
        )
    for version in range(found, SCHEMA_VERSION):
        with conn:  # each migration and its version bump in one transaction (sqlite3 opens none for DDL by itself)
            conn.execute("BEGIN")
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
        log.info("incident_schema_migrated", version=version + 1)
    return found


def _statements(script: str) -> Iterable[str]:
    # executescript() commits first and cannot run inside our transaction: one statement at a time.
    return (s.strip() for s in script.split(";") if s.strip())


class IncidentDb:
    """Synchronous access; one connection, used from one thread only."""

    def __init__(self, path: str, retention: Retention = Retention(), clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention = retention
        self.clock = clock
        self.conn = sqlite3.connect(path, isolation_level="DEFERRED")
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        if path != MEMORY:
            # WAL: readers never wait for the writer, and a crash leaves the last commit whole.
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("incident_db_not_wal", path=path, journal_mode=mode)
            self.conn.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; WAL keeps it consistent
        self.conn.execute("PRAGMA busy_timeout = 5000")
        migrate(self.conn)
        self.prune(None)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------ writing

    def ingest(self, n: Notification, now: float) -> IngestResult:
        with self.conn:
            return self._ingest(n, now)

    def _ingest(self, n: Notification, now: float) -> IngestResult:
        firing = [a for a in n.alerts if a.status is AlertStatus.FIRING]
        row = self.conn.execute("SELECT id FROM incidents WHERE group_key = ? AND status = 'open' ORDER BY id DESC LIMIT 1", (n.group_key,)).fetchone()
        if row is None:
            if not firing or self._late_repeat(n.group_key, firing):
                return IngestResult(Action.IGNORED)
            incident_id = self._create(n, now)
            known: dict[str, tuple[str, float | None]] = {}
            opened = True
        else:
            incident_id = int(row["id"])
            known = {
                r["fingerprint"]: (r["status"], r["starts_at"])
                for r in self.conn.execute("SELECT fingerprint, status, starts_at FROM alerts WHERE incident_id = ?", (incident_id,))
            }
            opened = False
        newly_firing: list[Alert] = []
        newly_resolved: list[Alert] = []
        for alert in n.alerts:
            before = known.get(alert.fingerprint)
            if alert.status is AlertStatus.FIRING and (before is None or before[0] != AlertStatus.FIRING or before[1] != alert.starts_at):
                newly_firing.append(alert)
            elif alert.status is AlertStatus.RESOLVED and before is not None and before[0] == AlertStatus.FIRING:
                newly_resolved.append(alert)
            elif alert.status is AlertStatus.RESOLVED and before is None:
                continue  # a resolve for an alert this incident never saw firing: nothing to record
            else:
                continue
            self._store_alert(incident_id, alert, len(known))
            known[alert.fingerprint] = (alert.status.value, alert.starts_at)
        resolve_all = n.status is AlertStatus.RESOLVED
        if resolve_all:
            # Every alert of the group is resolved (Alertmanager's own verdict), also those
            # this notification no longer lists.
            self.conn.execute(
                "UPDATE alerts SET status = 'resolved', ends_at = COALESCE(ends_at, ?) WHERE incident_id = ? AND status = 'firing'", (now, incident_id)
            )
        changed = tuple(a.fingerprint for a in (*newly_firing, *newly_resolved))
        if opened:
            self._event(incident_id, now, EventKind.OPENED, _opened_detail(n, newly_firing), newly_firing)
        elif newly_firing:
            self._event(incident_id, now, EventKind.ALERTS_FIRING, f"{len(newly_firing)} alert(s) firing", newly_firing)
        if newly_resolved:
            self._event(incident_id, now, EventKind.ALERTS_RESOLVED, f"{len(newly_resolved)} alert(s) resolved", newly_resolved)
        firing_left = self.conn.execute("SELECT COUNT(*) FROM alerts WHERE incident_id = ? AND status = 'firing'", (incident_id,)).fetchone()[0]
        resolved = resolve_all or firing_left == 0
        if not opened and not changed and not resolved:
            self.conn.execute("UPDATE incidents SET notifications = notifications + 1 WHERE id = ?", (incident_id,))
            return IngestResult(Action.REPEATED, incident_id)
        if resolved:
            self._event(incident_id, now, EventKind.RESOLVED, "every alert of the group is resolved", [])
        self._refresh(incident_id, n, now, resolved)
        if opened:
            self.prune(now)
            return IngestResult(Action.OPENED, incident_id, changed)
        if resolved:
            return IngestResult(Action.RESOLVED, incident_id, changed)
        return IngestResult(Action.UPDATED, incident_id, changed)

    def _late_repeat(self, group_key: str, firing: Sequence[Alert]) -> bool:
        """A firing notification that only repeats alerts the last resolved incident of the
        group already saw end (same fingerprint, same start): a retry that arrived late,
        not a new occurrence."""
        row = self.conn.execute("SELECT id FROM incidents WHERE group_key = ? AND status = 'resolved' ORDER BY id DESC LIMIT 1", (group_key,)).fetchone()
        if row is None:
            return False
        seen = {(r["fingerprint"], r["starts_at"]) for r in self.conn.execute("SELECT fingerprint, starts_at FROM alerts WHERE incident_id = ?", (row["id"],))}
        return all((a.fingerprint, a.starts_at) in seen for a in firing)

    def _create(self, n: Notification, now: float) -> int:
        started = min((a.starts_at for a in n.alerts if a.starts_at is not None), default=now)
        cur = self.conn.execute(
            "INSERT INTO incidents (group_key, status, severity, title, receiver, external_url, started_at, updated_at, notifications,"
            " providers, endpoints, categories, chains, alertnames, alerts_firing, alerts_total)"
            " VALUES (?, 'open', 'none', '', ?, ?, ?, ?, 0, '[]', '[]', '[]', '[]', '[]', 0, 0)",
            (n.group_key, n.receiver, n.external_url, min(started, now), now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _store_alert(self, incident_id: int, alert: Alert, tracked: int) -> None:
        if tracked >= limits.INCIDENT_ALERTS:
            return
        self.conn.execute(
            "INSERT INTO alerts (incident_id, fingerprint, status, labels, annotations, starts_at, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, labels = excluded.labels,"
            " annotations = excluded.annotations, starts_at = excluded.starts_at, ends_at = excluded.ends_at",
            (incident_id, alert.fingerprint, alert.status.value, _dumps(dict(alert.labels)), _dumps(dict(alert.annotations)), alert.starts_at, alert.ends_at),
        )

    def _event(self, incident_id: int, at: float, kind: EventKind, detail: str, alerts: Sequence[Alert] | Sequence[str]) -> None:
        count = self.conn.execute("SELECT events FROM incidents WHERE id = ?", (incident_id,)).fetchone()[0]
        if count >= limits.INCIDENT_EVENTS:
            self.conn.execute("UPDATE incidents SET events_dropped = events_dropped + 1 WHERE id = ?", (incident_id,))
            return
        names = [a if isinstance(a, str) else _alert_name(a.labels) for a in alerts]
        shown = names[:EVENT_ALERTS_SHOWN]
        if len(names) > len(shown):
            shown.append(f"... and {len(names) - len(shown)} more")
        self.conn.execute(
            "INSERT INTO events (incident_id, at, kind, detail, alerts) VALUES (?, ?, ?, ?, ?)", (incident_id, at, kind.value, detail, _dumps(shown))
        )
        self.conn.execute("UPDATE incidents SET events = events + 1 WHERE id = ?", (incident_id,))

    def _refresh(self, incident_id: int, n: Notification, now: float, resolved: bool) -> None:
        """Recompute what the incident covers from its alerts."""
        rows = self.conn.execute("SELECT status, labels FROM alerts WHERE incident_id = ?", (incident_id,)).fetchall()
        labels = [json.loads(r["labels"]) for r in rows]
        providers = sorted({lb["provider"] for lb in labels if lb.get("provider")})
        endpoints = sorted({f"{lb['provider']}/{lb['endpoint']}" for lb in labels if lb.get("provider") and lb.get("endpoint")})
        categories = sorted({lb["category"] for lb in labels if lb.get("category")})
        chains = sorted({lb["chain"] for lb in labels if lb.get("chain")})
        alertnames = sorted({lb["alertname"] for lb in labels if lb.get("alertname")})
        severity = max((Severity.of(lb.get("severity")) for lb in labels), key=lambda s: s.rank, default=Severity.NONE)
        firing = sum(1 for r in rows if r["status"] == AlertStatus.FIRING)
        self.conn.execute(
            "UPDATE incidents SET status = ?, severity = ?, title = ?, updated_at = ?, resolved_at = ?, notifications = notifications + 1,"
            " providers = ?, endpoints = ?, categories = ?, chains = ?, alertnames = ?, alerts_firing = ?, alerts_total = ?,"
            " receiver = ?, external_url = ? WHERE id = ?",
            (
                IncidentStatus.RESOLVED if resolved else IncidentStatus.OPEN,
                severity.value,
                title_of(alertnames, providers, categories, n.group_labels),
                now,
                now if resolved else None,
                _dumps(providers),
                _dumps(endpoints),
                _dumps(categories),
                _dumps(chains),
                _dumps(alertnames),
                firing,
                len(rows),
                n.receiver,
                n.external_url,
                incident_id,
            ),
        )

    def record(self, incident_id: int, at: float, kind: EventKind, detail: str, explanation: Mapping[str, Any] | None = None) -> None:
        """An event of the explanation path, and the explanation itself when given."""
        with self.conn:
            if explanation is not None:
                self.conn.execute("UPDATE incidents SET explanation = ? WHERE id = ?", (_dumps(dict(explanation)), incident_id))
            self._event(incident_id, at, kind, detail, [])

    def prune(self, now: float | None) -> int:
        """Retention: resolved incidents past the age bound, then the oldest past the count bound."""
        now = self.clock() if now is None else now
        with self.conn:
            gone = self.conn.execute("DELETE FROM incidents WHERE status = 'resolved' AND resolved_at < ?", (now - self.retention.max_age_seconds,)).rowcount
            gone += self.conn.execute(
                "DELETE FROM incidents WHERE id NOT IN (SELECT id FROM incidents ORDER BY id DESC LIMIT ?)", (self.retention.max_count,)
            ).rowcount
        if gone:
            log.info("incidents_pruned", deleted=gone, max_age_days=round(self.retention.max_age_seconds / 86400, 2), max_count=self.retention.max_count)
        return gone

    # ------------------------------------------------------------ reading

    def page(self, filters: Filters, offset: int, limit: int) -> tuple[int, list[Incident]]:
        where, args = _where(filters)
        total = int(self.conn.execute(f"SELECT COUNT(*) FROM incidents{where}", args).fetchone()[0])  # `where`: fixed clauses, values bound
        rows = self.conn.execute(f"SELECT * FROM incidents{where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return total, [_incident(r) for r in rows]

    def get(self, incident_id: int) -> IncidentDetail | None:
        row = self.conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            return None
        alerts = tuple(
            StoredAlert(r["fingerprint"], r["status"], json.loads(r["labels"]), json.loads(r["annotations"]), r["starts_at"], r["ends_at"])
            for r in self.conn.execute("SELECT * FROM alerts WHERE incident_id = ? ORDER BY starts_at, fingerprint", (incident_id,))
        )
        timeline = tuple(
            Event(r["at"], EventKind(r["kind"]), r["detail"], tuple(json.loads(r["alerts"])))
            for r in self.conn.execute("SELECT * FROM events WHERE incident_id = ? ORDER BY id", (incident_id,))
        )
        return IncidentDetail(_incident(row), alerts, timeline)

    def open_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM incidents WHERE status = 'open'").fetchone()[0])

    def unexplained(self) -> list[int]:
        """Incidents whose explanation never finished (the process stopped first)."""
        return [int(r[0]) for r in self.conn.execute("SELECT id FROM incidents WHERE explanation IS NULL ORDER BY id")]

    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT version FROM schema_version").fetchone()[0])


def _where(f: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if f.status is not None:
        clauses.append("status = ?")
        args.append(f.status.value)
    if f.severity is not None:
        clauses.append("severity = ?")
        args.append(f.severity.value)
    if f.provider is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(incidents.providers) WHERE value = ?)")
        args.append(f.provider)
    if f.since is not None:
        clauses.append("updated_at >= ?")
        args.append(f.since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _incident(r: sqlite3.Row) -> Incident:
    return Incident(
        id=int(r["id"]),
        group_key=r["group_key"],
        status=IncidentStatus(r["status"]),
        severity=Severity(r["severity"]),
        title=r["title"],
        receiver=r["receiver"],
        external_url=r["external_url"],
        started_at=r["started_at"],
        updated_at=r["updated_at"],
        resolved_at=r["resolved_at"],
        notifications=int(r["notifications"]),
        providers=tuple(json.loads(r["providers"])),
        endpoints=tuple(json.loads(r["endpoints"])),
        categories=tuple(json.loads(r["categories"])),
        chains=tuple(json.loads(r["chains"])),
        alertnames=tuple(json.loads(r["alertnames"])),
        alerts_firing=int(r["alerts_firing"]),
        alerts_total=int(r["alerts_total"]),
        explanation=json.loads(r["explanation"]) if r["explanation"] else None,
        events_dropped=int(r["events_dropped"]),
    )


def _alert_name(labels: Mapping[str, str]) -> str:
    where = "/".join(labels[k] for k in ("provider", "endpoint") if labels.get(k)) or labels.get("category") or labels.get("chain", "")
    return f"{labels.get('alertname', 'alert')} {where}".strip()


def _opened_detail(n: Notification, firing: Sequence[Alert]) -> str:
    detail = f"opened by {len(firing)} firing alert(s)"
    if n.truncated_alerts:
        detail += f" ({n.truncated_alerts} more left out by the receiver's max_alerts)"
    return detail


def _shorten(names: Sequence[str], most: int = 4) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def title_of(alertnames: Sequence[str], providers: Sequence[str], categories: Sequence[str], group_labels: Mapping[str, str]) -> str:
    what = alertnames[0] if len(alertnames) == 1 else f"{len(alertnames)} alerts ({_shorten(alertnames, 3)})" if alertnames else "Alerts"
    where = _shorten(providers) or _shorten(categories) or ", ".join(f"{k}={v}" for k, v in sorted(group_labels.items()))
    return f"{what}: {where}" if where else what


class IncidentStore:
    """IncidentDb on its own thread: every call is queued to that thread, in order."""

    def __init__(self, path: str = MEMORY, retention: Retention = Retention(), clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention = retention
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: IncidentDb | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incident-db")
        try:
            self._db = await self._run(lambda: IncidentDb(self.path, self.retention, self.clock))
        except BaseException:  # a path that cannot be opened, a newer schema: no thread left behind
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._db is not None:
            db = self._db
            await self._run(db.close)
        self._executor.shutdown(wait=True)
        self._executor, self._db = None, None

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("the incident store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def call(self, fn: Callable[[IncidentDb], T]) -> T:
        """Run `fn(db)` on the store's thread."""

        def run() -> T:
            assert self._db is not None
            return fn(self._db)

        return await self._run(run)
