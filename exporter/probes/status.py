"""The `status` probe kind: a provider's own system status, read as data.

An exchange in announced maintenance should not page anyone: the status source says
so, `crypto_api_provider_maintenance` shows it, and the ProviderMaintenance alert mutes
the provider's other alerts (docs/maintenance.md). Status sources are themselves
unreliable, so this kind is a **side channel**: one attempt, no retry, no key (every
source here is public), no circuit breaker, and its endpoint never counts in the
provider's status, health score or `crypto_api_up` (state.py, metrics.py). A failing
source shows only in its own outcome counters (`crypto_api_probes_total` with its own
endpoint name) and leaves the last known maintenance report to expire.

Formats, each checked against its documentation or a client library (issue 11):

- binance `GET /sapi/v1/system/status` -> `{"status": 0, "msg": "normal"}`, 1 is
  "system_maintenance"; public, IP weight 1. Sources: binance-sdk (docs.rs)
  wallet::rest_api::models::SystemStatusResponse ("0: normal, 1: system maintenance");
  Binance's OpenAPI spec GetSystemStatusV1Resp; ccxt binance.fetchStatus.
- kraken `GET /0/public/SystemStatus` -> `{"error": [], "result": {"status": "online",
  "timestamp": "..."}}`, status one of online, maintenance, cancel_only, post_only.
  Source: https://docs.kraken.com/api/docs/rest-api/get-system-status. The newer
  `upcoming_maintenance` array is documented without its item fields: not read
  (unconfirmed).
- okx `GET /api/v5/system/status` -> `{"code": "0", "data": [{"title", "state",
  "begin", "end", ...}]}`, begin/end Unix ms as strings, state one of scheduled,
  ongoing, pre_open, completed, canceled. Sources: rust-okx StatusItem (docs.rs, citing
  https://www.okx.com/docs-v5/en/#rest-api-status-get-system-status), okxapi/python-okx
  Status.py.
- bybit `GET /v5/system/status` -> `{"retCode": 0, "result": {"list": [{"title",
  "state", "begin", "end", ...}]}}`, begin/end Unix ms as strings. Source:
  https://bybit-exchange.github.io/docs/v5/system-status. Its state values beyond
  "completed" are not listed there: scheduled / ongoing are read as OKX's (unconfirmed).
- statuspage (Atlassian) `GET /api/v2/summary.json` -> `{"page", "status": {"indicator"},
  "components": [{"status"}], "incidents", "scheduled_maintenances": [{"status",
  "scheduled_for", "scheduled_until", "name"}]}`; maintenance status one of scheduled,
  in_progress, verifying, completed; component status `under_maintenance`. Sources:
  the statuspage.io client typings (unpkg statuspage.io@3.1.1 Result.d.ts), MongoDB's
  documented Statuspage summary.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..classify import parse_timestamp, short
from ..config import Auth, Provider, StatusFormat, TimeUnit
from ..model import Maintenance, MaintenanceState, Outcome, ProbeResult
from ..safejson import JsonError, loads
from . import http
from .context import ProbeContext, ProbeSpec, probe_result


class StatusPayloadError(ValueError):
    """The source answered, in a shape this format does not describe."""


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise StatusPayloadError(f"{where}: expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise StatusPayloadError(f"{where}: expected a list")
    return value


def _binance(doc: Any) -> Maintenance:
    body = _dict(doc, "body")
    status = body.get("status")
    msg = short(str(body.get("msg", "")))
    if status == 0 and not isinstance(status, bool):
        return Maintenance(MaintenanceState.NONE, detail=msg)
    if status == 1 and not isinstance(status, bool):
        return Maintenance(MaintenanceState.ONGOING, detail=msg or "system_maintenance")
    raise StatusPayloadError(f"status: expected 0 or 1, got {short(repr(status))}")


# Kraken's trading-engine modes other than `online`: no matching (cancel_only,
# post_only) or no orders at all (maintenance); Kraken runs them around its windows.
_KRAKEN_DOWN = frozenset({"maintenance", "cancel_only", "post_only"})


def _kraken(doc: Any) -> Maintenance:
    body = _dict(doc, "body")
    errors = _list(body.get("error"), "error")
    if errors:
        raise StatusPayloadError(short(f"error: {errors}"))
    status = _dict(body.get("result"), "result").get("status")
    if status == "online":
        return Maintenance(MaintenanceState.NONE, detail="online")
    if status in _KRAKEN_DOWN:
        return Maintenance(MaintenanceState.ONGOING, detail=str(status))
    raise StatusPayloadError(f"result.status: expected online, maintenance, cancel_only or post_only, got {short(repr(status))}")


# Window states of OKX (and Bybit): which mean "now", which "announced".
_NOW_STATES = frozenset({"ongoing", "pre_open"})
_ANNOUNCED_STATES = frozenset({"scheduled"})
_OVER_STATES = frozenset({"completed", "canceled"})


def _windows(items: list[Any], where: str) -> Maintenance:
    """The most pressing of a list of `{state, begin, end, title}` windows: an ongoing
    one, else the earliest announced one, else none."""
    ongoing: list[Maintenance] = []
    scheduled: list[Maintenance] = []
    for i, item in enumerate(items):
        w = _dict(item, f"{where}[{i}]")
        state = w.get("state")
        if state in _OVER_STATES:
            continue
        if state not in _NOW_STATES and state not in _ANNOUNCED_STATES:
            raise StatusPayloadError(f"{where}[{i}].state: unknown state {short(repr(state))}")
        start, end = parse_timestamp(w.get("begin"), TimeUnit.MS), parse_timestamp(w.get("end"), TimeUnit.MS)
        title = short(str(w.get("title", "")))
        target = ongoing if state in _NOW_STATES else scheduled
        target.append(Maintenance(MaintenanceState.ONGOING if state in _NOW_STATES else MaintenanceState.SCHEDULED, start, end, title))
    if ongoing:
        return ongoing[0]
    if scheduled:
        return min(scheduled, key=lambda m: m.start if m.start is not None else float("inf"))
    return Maintenance(MaintenanceState.NONE)


def _okx(doc: Any) -> Maintenance:
    body = _dict(doc, "body")
    if body.get("code") not in ("0", 0):
        raise StatusPayloadError(short(f"code {body.get('code')!r}: {body.get('msg', '')}"))
    return _windows(_list(body.get("data"), "data"), "data")


def _bybit(doc: Any) -> Maintenance:
    body = _dict(doc, "body")
    if body.get("retCode") != 0:
        raise StatusPayloadError(short(f"retCode {body.get('retCode')!r}: {body.get('retMsg', '')}"))
    return _windows(_list(_dict(body.get("result"), "result").get("list"), "result.list"), "result.list")


_SP_NOW = frozenset({"in_progress", "verifying"})


def _statuspage(doc: Any) -> Maintenance:
    body = _dict(doc, "body")
    _dict(body.get("status"), "status")  # every summary.json has it: a shape check
    ongoing: list[Maintenance] = []
    scheduled: list[Maintenance] = []
    for i, item in enumerate(_list(body.get("scheduled_maintenances"), "scheduled_maintenances")):
        m = _dict(item, f"scheduled_maintenances[{i}]")
        status = m.get("status")
        start = parse_timestamp(m.get("scheduled_for"), TimeUnit.ISO)
        end = parse_timestamp(m.get("scheduled_until"), TimeUnit.ISO)
        name = short(str(m.get("name", "")))
        if status in _SP_NOW:
            ongoing.append(Maintenance(MaintenanceState.ONGOING, start, end, name))
        elif status == "scheduled":
            scheduled.append(Maintenance(MaintenanceState.SCHEDULED, start, end, name))
    if ongoing:
        return ongoing[0]
    # A component marked under maintenance without a maintenance event (set by hand).
    for i, item in enumerate(_list(body.get("components"), "components")):
        if _dict(item, f"components[{i}]").get("status") == "under_maintenance":
            return Maintenance(MaintenanceState.ONGOING, detail=short(str(item.get("name", "component under maintenance"))))
    if scheduled:
        return min(scheduled, key=lambda m: m.start if m.start is not None else float("inf"))
    return Maintenance(MaintenanceState.NONE)


PARSERS: Mapping[StatusFormat, Callable[[Any], Maintenance]] = {
    StatusFormat.BINANCE: _binance,
    StatusFormat.KRAKEN: _kraken,
    StatusFormat.OKX: _okx,
    StatusFormat.BYBIT: _bybit,
    StatusFormat.STATUSPAGE: _statuspage,
}


def parse(fmt: StatusFormat, body: bytes) -> Maintenance:
    """A status body to its report; StatusPayloadError says what is wrong."""
    try:
        doc = loads(body)
    except JsonError as e:
        raise StatusPayloadError(f"not JSON ({e})") from None
    return PARSERS[fmt](doc)


def _source(provider: Provider, base_url: str | None) -> Provider:
    """The provider as the status request sees it: the source's host, and never a key
    (a status page is another host, and every source here is public)."""
    return replace(provider, base_url=base_url or provider.base_url, auth=Auth())


async def probe(ctx: ProbeContext, spec: ProbeSpec) -> ProbeResult:
    """One attempt at the status source; never raises, never touches the breaker or keys."""
    provider, endpoint, runtime = spec.provider, spec.endpoint, spec.runtime
    assert endpoint.status is not None  # config.py: kind status requires it
    started = ctx.wall()

    def finish(outcome: Outcome, detail: str = "", attempt: http._Attempt | None = None, maintenance: Maintenance | None = None) -> ProbeResult:
        return probe_result(ctx, spec, started, outcome, detail, maintenance=maintenance, **http.one_attempt(attempt))

    # Same host, same quota: the provider's own status endpoint spends its budget.
    if endpoint.status.base_url is None and runtime.budget is not None and not runtime.budget.take(ctx.wall()):
        return finish(Outcome.BUDGET_EXHAUSTED, "client-side budget used up for this window")
    attempt = await http._attempt(ctx, _source(provider, endpoint.status.base_url), endpoint, None, endpoint.timeout)
    if attempt.outcome is not Outcome.SUCCESS or attempt.body is None:
        return finish(attempt.outcome, f"status source: {attempt.detail}" if attempt.detail else "status source failed", attempt)
    try:
        report = parse(endpoint.status.format, attempt.body)
    except StatusPayloadError as e:
        return finish(Outcome.BAD_PAYLOAD, short(f"status source ({endpoint.status.format.value}): {e}"), attempt)
    return finish(Outcome.SUCCESS, report.detail if report.state is not MaintenanceState.NONE else "", attempt, report)
