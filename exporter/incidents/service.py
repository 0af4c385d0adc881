"""The incident service: Alertmanager notifications in, incidents out.

A notification is grouped by its `groupKey` (Alertmanager's own group: one per
category and provider with the shipped routes): the first firing one opens an incident,
later ones add or resolve alerts, the group's "resolved" closes it. Repeats
(Alertmanager's repeat_interval, retries after a timeout, an HA pair both sending)
change nothing but a counter. A grouped storm of 50 alerts is one notification, so one
incident; its explanation runs once, `settle_seconds` after the opening, so that the
alerts that join within that time are explained (and summarized by the LLM) together.

Storage is the SQLite store's own thread; explanations are tasks on the loop; nothing
here blocks the loop. A restart finds the open incidents in the file, and explains the
ones the last process did not get to."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from ..redact import Redactor
from .explain import Explanation, explain
from .facts import Facts, FactSource
from .llm import LlmClient, LlmError, LlmSettings
from .notify import SlackNotifier
from .payload import parse_notification
from .records import Action, EventKind, Incident, IncidentBrief, IncidentDetail, IngestResult
from .store import MEMORY, Filters, IncidentStore, Retention

log = structlog.get_logger()
FACTS_SECONDS = 10.0  # the facts of one explanation, at most; then the rules explain from the alerts
# Env var names whose values are secrets (keys, tokens, webhook URLs): masked in every prompt.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|WEBHOOK|AUTH", re.IGNORECASE)


@dataclass(frozen=True)
class IncidentSettings:
    db: str = MEMORY  # a file path for incidents that survive restarts
    retention_days: float = 90.0
    retention_count: int = 10_000
    settle_seconds: float = 10.0
    llm: LlmSettings | None = None
    slack_url_file: str | None = None

    @property
    def retention(self) -> Retention:
        return Retention(self.retention_days * 86400.0, self.retention_count)


def env_secrets(env: Mapping[str, str]) -> list[str]:
    """Values of the environment that name themselves secret."""
    return [v for k, v in env.items() if SECRET_NAME.search(k) and v]


class IncidentService:
    def __init__(
        self,
        settings: IncidentSettings,
        facts: FactSource,
        *,
        secrets: Callable[[], Iterable[str]] = lambda: (),
        clock: Callable[[], float] = time.time,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.facts = facts
        self.secrets = secrets
        self.clock = clock
        self.sleep = sleep  # the settle wait; tests pass one they release by hand
        self.store = IncidentStore(settings.db, settings.retention, clock)
        self.open_incidents = 0  # for the gauge: collect() does no I/O
        self.notifications: Counter[str] = Counter()  # by action
        self.llm_calls: Counter[str] = Counter()  # by result: ok, failed
        self._session = session
        self._own_session = False
        self._llm: LlmClient | None = None
        self._slack: SlackNotifier | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()  # one notification at a time, in arrival order

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if (self.settings.llm or self.settings.slack_url_file) and self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        try:
            if self.settings.llm is not None:
                assert self._session is not None
                self._llm = LlmClient(self.settings.llm, self._session)  # reads the key file: ValueError naming the flag
            if self.settings.slack_url_file is not None:
                assert self._session is not None
                self._slack = SlackNotifier(self.settings.slack_url_file, self._session)
            await self.store.open()
        except BaseException:
            if self._own_session and self._session is not None:
                await self._session.close()
                self._session = None
            raise
        self.open_incidents = await self.store.call(lambda db: db.open_count())
        for incident_id in await self.store.call(lambda db: db.unexplained()):
            self._schedule(incident_id, settle=0.0)
        log.info("incidents_started", db=self.settings.db, open=self.open_incidents, llm=self._llm is not None, slack=self._slack is not None)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait for the explanations under way (tests, and a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # ------------------------------------------------------------ notifications

    async def receive(self, body: Any) -> IngestResult:
        """One webhook body: parsed (PayloadError names the field), grouped, stored."""
        notification = parse_notification(body)
        async with self._lock:
            now = self.clock()
            result = await self.store.call(lambda db: db.ingest(notification, now))
            self.open_incidents = await self.store.call(lambda db: db.open_count())
        self.notifications[result.action.value] += 1
        log.info(
            "incident_notification", action=result.action.value, incident=result.incident_id, group_key=notification.group_key, alerts=len(notification.alerts)
        )
        if result.action is Action.OPENED and result.incident_id is not None:
            self._schedule(result.incident_id, self.settings.settle_seconds)
        return result

    # ------------------------------------------------------------ reading

    async def page(self, filters: Filters, page: int, per_page: int) -> tuple[int, list[Incident]]:
        return await self.store.call(lambda db: db.page(filters, (page - 1) * per_page, per_page))

    async def get(self, incident_id: int) -> IncidentDetail | None:
        return await self.store.call(lambda db: db.get(incident_id))

    async def recent_incidents(self, limit: int = 10, filters: Filters | None = None) -> list[IncidentBrief]:
        """The newest incidents, open or resolved, newest first: what the status page shows."""
        _, rows = await self.page(filters or Filters(), 1, max(1, limit))
        return [brief(i) for i in rows]

    # ------------------------------------------------------------ explanations

    def _schedule(self, incident_id: int, settle: float) -> None:
        if incident_id in self._tasks:
            return
        task = asyncio.create_task(self._explain(incident_id, settle), name=f"incident-{incident_id}-explain")
        self._tasks[incident_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(incident_id, None))

    async def _gather(self, providers: Sequence[str]) -> Facts:
        try:
            async with asyncio.timeout(FACTS_SECONDS):
                return await self.facts.gather(providers)
        except TimeoutError:
            return Facts("none", warnings=(f"the facts did not arrive within {FACTS_SECONDS:g} s",))
        except Exception as e:  # noqa: BLE001 - a fact source's bug must not cost the incident its explanation
            log.warning("incident_facts_crashed", error=type(e).__name__)
            return Facts("none", warnings=(f"the facts could not be read ({type(e).__name__})",))

    def redactor(self) -> Redactor:
        known = [*self.secrets(), *env_secrets(os.environ)]
        if self._llm is not None and self._llm.key:
            known.append(self._llm.key)
        if self._slack is not None:
            known.append(self._slack.url)
        return Redactor(known)

    async def _explain(self, incident_id: int, settle: float) -> None:
        try:
            if settle > 0:
                await self.sleep(settle)
            detail = await self.get(incident_id)
            if detail is None:
                return
            facts = await self._gather(detail.incident.providers)
            explanation = explain(detail.incident, detail.alerts, facts, self.clock())
            await self.store.call(
                lambda db: db.record(incident_id, self.clock(), EventKind.EXPLAINED, f"{explanation.cause.value}: {explanation.title}", explanation.to_json())
            )
            log.info("incident_explained", incident=incident_id, cause=explanation.cause.value, facts_source=facts.source)
            if self._llm is not None:
                explanation = await self._summarize(detail, explanation)
            if self._slack is not None:
                await self._notify(detail.incident, explanation)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must never take the service down; the incident stays unexplained and is retried on restart
            log.exception("incident_explain_crashed", incident=incident_id)

    async def _summarize(self, detail: IncidentDetail, explanation: Explanation) -> Explanation:
        assert self._llm is not None
        prompt = self._llm.prompt_for(detail.incident, detail.alerts, explanation, self.redactor())
        incident_id = detail.incident.id
        try:
            summary = self.redactor().redact(await self._llm.complete(prompt))
        except LlmError as e:
            self.llm_calls["failed"] += 1
            log.warning("incident_llm_failed", incident=incident_id, error=str(e))
            why = f"LLM summary failed ({e}); the rule text stands"
            await self.store.call(lambda db: db.record(incident_id, self.clock(), EventKind.LLM_FAILED, why))
            return explanation
        self.llm_calls["ok"] += 1
        explanation = explanation.with_llm(summary)
        await self.store.call(lambda db: db.record(incident_id, self.clock(), EventKind.SUMMARIZED, "LLM summary added", explanation.to_json()))
        return explanation

    async def _notify(self, incident: Incident, explanation: Explanation) -> None:
        assert self._slack is not None
        text = self.redactor().redact(f"*Incident #{incident.id}: {incident.title}* ({incident.severity.value})\n{explanation.text}")
        ok = await self._slack.send(text)
        kind, detail = (EventKind.NOTIFIED, "Slack follow-up sent") if ok else (EventKind.NOTIFY_FAILED, "Slack follow-up failed (see the log)")
        await self.store.call(lambda db: db.record(incident.id, self.clock(), kind, detail))


def brief(i: Incident) -> IncidentBrief:
    text = Explanation.from_json(i.explanation).text if i.explanation else None
    return IncidentBrief(i.id, i.title, i.status, i.severity, i.started_at, i.resolved_at, i.providers, text)
