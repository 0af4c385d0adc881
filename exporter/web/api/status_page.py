"""The status page, `GET /status` (issue 16): for people without Grafana (support,
customers). Providers by category with their status, uptime over 24 h and 7 d and a
latency sparkline (uptime.py), maintenance windows, and open and recent incidents with
their explanation.

Server-rendered HTML, no script, no external resource (the page works offline and no
request leaves the exporter's host: its Content-Security-Policy says so to the browser
too); every text from the config or an incident is escaped. Disabled providers (quiet
because unconfigured) are listed apart, folded, with the reason.

`StatusBoard` is what the page and the badges (badges.py) read: the store, the running
config, the uptime history and the incident source. Incidents come from an injected
`IncidentSource` (web/api/incidents.py's status_source over the incident service; tests
give their own)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal

import structlog
from aiohttp import web
from typing_extensions import TypedDict

from ...config import Config
from ...model import Category, DisabledReason, Maintenance, MaintenanceState, ProbeResult, ProviderStatus
from ...state import ProviderState, State
from ..control import ExporterControl
from .history import PrometheusError, PrometheusHistory
from .svg import format_latency, format_uptime, sparkline
from .uptime import NO_HISTORY, ProviderHistory, StatusHistory, UptimeBook, Window, counts_for_uptime, from_prometheus
from .views import iso

log = structlog.get_logger()

PAGE_MAX_AGE = 15  # seconds: a status page is looked at during trouble; stale for long, it misleads
PAGE_REFRESH = 60  # the page reloads itself (a meta refresh: no script)
HISTORY_TTL = 30.0  # seconds a Prometheus answer is reused by the page and every badge
INCIDENT_LIMIT = 20
RECENT_INCIDENTS = 7 * 24 * 3600.0  # resolved incidents older than this are left off the page
EXPLANATION_CHARS = 4000  # an explanation is cut there: the page stays readable (and bounded)
# No script, no external anything: the browser refuses what the page does not need.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'"


class IncidentBrief(TypedDict):
    """One incident as the page shows it; the incident service's records map onto it."""

    id: str
    title: str
    status: Literal["open", "resolved"]
    severity: str
    started_at: float  # unix seconds
    resolved_at: float | None
    providers: list[str]
    explanation: str


# The newest incidents, at most `limit` of them (open and resolved); a coroutine is fine too.
IncidentSource = Callable[[int], Sequence[IncidentBrief] | Awaitable[Sequence[IncidentBrief]]]


# ---------------------------------------------------------------- the board


@dataclass
class StatusBoard:
    """The one owner of what the status page and the badges show."""

    control: ExporterControl
    store: State
    prometheus: PrometheusHistory | None
    incidents: IncidentSource
    clock: Callable[[], float] = field(default=time.time)
    public: bool = False  # PUBLIC_STATUS: cacheable by anyone (badges' Cache-Control: public)
    book: UptimeBook = field(default_factory=UptimeBook)
    _prom: tuple[float, StatusHistory | str] | None = field(default=None, init=False)  # last answer or error, and when
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def config(self) -> Config:
        return self.control.config

    def known(self) -> list[str]:
        """Every configured provider, probed or disabled (a disabled one has badges too)."""
        return [*self.store.providers, *self.store.disabled]

    def on_result(self, result: ProbeResult) -> None:
        """Every published probe result (the hot path: O(1))."""
        ps = self.store.providers.get(result.provider)
        ep = ps.endpoints.get(result.endpoint) if ps is not None else None
        if ep is None or ep.side_channel or not counts_for_uptime(result.outcome):
            return
        self.book.add(result.provider, result.finished_at, result.ok, result.duration)

    async def history(self) -> StatusHistory:
        """Uptime and latency of every probed provider: from Prometheus when set (its
        answer, or its failure, reused for HISTORY_TTL, by one query at a time), else or
        on failure from memory."""
        names = list(self.store.providers)
        self.book.retain(names)
        if self.prometheus is None:
            return self.book.snapshot(names, self.clock())
        async with self._lock:  # one set of queries at a time; the others wait and reuse it
            now = self.clock()
            if self._prom is None or now - self._prom[0] >= HISTORY_TTL:
                try:
                    self._prom = (now, await from_prometheus(self.prometheus, names, now))
                except PrometheusError as e:
                    log.warning("prometheus_query_failed", chart="status_page", error=str(e))
                    self._prom = (now, f"{e}; uptime and latency from the exporter's own memory")
            answer = self._prom[1]
        if isinstance(answer, StatusHistory):
            return answer
        memory = self.book.snapshot(names, self.clock())
        return StatusHistory("memory", memory.providers, answer)

    async def recent_incidents(self) -> tuple[Sequence[IncidentBrief], str | None]:
        """The incidents to show, and an error to show instead when the source failed
        (the page never fails for it)."""
        try:
            got = self.incidents(INCIDENT_LIMIT)
            briefs = await got if inspect.isawaitable(got) else got
        except Exception as e:  # noqa: BLE001 - whatever the source raises, the rest of the page shows
            log.warning("incident_source_failed", error_type=type(e).__name__)
            return (), "incidents are unavailable right now"
        return select_incidents(briefs, self.clock()), None


def select_incidents(briefs: Sequence[IncidentBrief], now: float) -> list[IncidentBrief]:
    """Open ones first (newest first), then the ones resolved in the last 7 days."""
    opened = sorted((b for b in briefs if b["status"] == "open"), key=lambda b: -b["started_at"])
    resolved = [b for b in briefs if b["status"] == "resolved" and now - (b["resolved_at"] or b["started_at"]) <= RECENT_INCIDENTS]
    resolved.sort(key=lambda b: -(b["resolved_at"] or b["started_at"]))
    return [*opened, *resolved][:INCIDENT_LIMIT]


# ---------------------------------------------------------------- what the page shows


@dataclass(frozen=True)
class ProviderLine:
    name: str
    category: Category
    status: ProviderStatus
    maintenance: Maintenance | None  # the status source's report while trusted
    in_maintenance: bool  # active now
    history: ProviderHistory


@dataclass(frozen=True)
class PageView:
    now: float
    providers: Sequence[ProviderLine]
    disabled: Sequence[tuple[str, DisabledReason | None]]
    history: StatusHistory
    incidents: Sequence[IncidentBrief]
    incidents_error: str | None = None
    memory_since: float | None = None  # when the memory source's data begins


def provider_line(ps: ProviderState, history: ProviderHistory, now: float) -> ProviderLine:
    report = ps.maintenance(now)
    return ProviderLine(ps.name, ps.spec.category, ps.status(), report, report is not None and report.active(now), history)


async def page_view(board: StatusBoard) -> PageView:
    history, (incidents, error) = await asyncio.gather(board.history(), board.recent_incidents())
    now = board.clock()
    lines = [provider_line(ps, history.providers.get(name, NO_HISTORY), now) for name, ps in board.store.providers.items()]
    disabled = [(name, ps.disabled) for name, ps in board.store.disabled.items()]
    since = min((b.since for b in board.book.books.values()), default=None)
    return PageView(now, lines, disabled, history, incidents, error, since)


# ---------------------------------------------------------------- rendering (pure)

CATEGORY_TITLES: dict[Category, str] = {
    Category.MARKET_DATA: "Market data",
    Category.EXCHANGES: "Exchanges",
    Category.EXPLORERS: "Block explorers",
    Category.RPC_NODES: "RPC nodes",
    Category.ONCHAIN: "On-chain analytics",
    Category.NEWS: "News",
    Category.SENTIMENT: "Sentiment",
}
DISABLED_WHY: dict[DisabledReason | None, str] = {
    DisabledReason.NO_KEY: "no API key configured",
    DisabledReason.CONFIG: "disabled in the configuration",
    DisabledReason.FLAG: "disabled on the command line",
    None: "not probed",
}

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--info:#0969da;--idle:#6e7781}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--card:#151b23;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--info:#4493f8;--idle:#9198a1}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:62rem;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--info)}
h1{font-size:1.45rem;margin:.2rem 0 .6rem}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem;display:flex;justify-content:space-between;align-items:baseline;gap:.5rem;flex-wrap:wrap}
h2 small,.muted{font-weight:normal;color:var(--muted);font-size:.85rem}
.banner{padding:.75rem 1rem;border-radius:.5rem;color:#fff;font-weight:600}
.banner.ok{background:var(--ok)}.banner.warn{background:var(--warn)}.banner.bad{background:var(--bad)}.banner.info{background:var(--info)}.banner.idle{background:var(--idle)}
.warning{border-left:4px solid var(--warn);padding:.4rem .8rem;background:var(--card)}
.rows{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:.5rem;overflow:hidden}
.row{display:grid;grid-template-columns:minmax(0,1fr) 7.5rem 5.5rem 5.5rem 11.5rem;gap:.25rem .75rem;align-items:center;padding:.45rem .75rem;border-top:1px solid var(--line)}
.row:first-child{border-top:0}
.row.head{background:var(--card);font-size:.8rem;color:var(--muted)}
.name{font-weight:600;overflow-wrap:anywhere}
.pill{display:inline-block;padding:0 .55rem;border-radius:1rem;font-size:.8rem;border:1px solid currentColor;white-space:nowrap}
.s-online{color:var(--ok)}.s-degraded{color:var(--warn)}.s-offline{color:var(--bad)}.s-maintenance{color:var(--info)}.s-unknown,.s-disabled{color:var(--idle)}
.num{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
.lat{display:flex;align-items:center;justify-content:flex-end;gap:.5rem;color:var(--info);font-variant-numeric:tabular-nums;white-space:nowrap}
.lat span{color:var(--fg);min-width:4rem;text-align:right}
.spark{display:block;max-width:100%;height:auto}
.incident{border:1px solid var(--line);border-left:4px solid var(--idle);border-radius:.5rem;padding:.5rem .8rem;margin:.5rem 0}
.incident.open{border-left-color:var(--bad)}.incident.resolved{border-left-color:var(--ok)}
.incident h3{font-size:1rem;margin:.1rem 0;overflow-wrap:anywhere}
.explain{white-space:pre-line;overflow-wrap:anywhere;margin:.4rem 0 0}
ul.plain{padding-left:1.2rem}
footer{margin-top:2rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){body{padding:.6rem}.row{grid-template-columns:minmax(0,1fr) auto}.row.head{display:none}.row.head+.row{border-top:0}
.row .num{text-align:left}.row .num::before{content:attr(data-label) " ";color:var(--muted);font-size:.8rem}.row .st{text-align:right}
.lat{grid-column:1/-1;justify-content:flex-start}}
"""


def _time(ts: float | None) -> str:
    if ts is None:
        return "&ndash;"
    when = iso(ts)
    return f'<time datetime="{when}">{when[:16].replace("T", " ")} UTC</time>'


def _status_word(line: ProviderLine) -> str:
    return "maintenance" if line.in_maintenance else line.status.value


def overall(lines: Sequence[ProviderLine]) -> tuple[str, str]:
    """The banner: (css class, sentence)."""
    if not lines:
        return "idle", "No provider is monitored"
    down = sum(1 for x in lines if x.status is ProviderStatus.OFFLINE and not x.in_maintenance)
    slow = sum(1 for x in lines if x.status is ProviderStatus.DEGRADED and not x.in_maintenance)
    maint = sum(1 for x in lines if x.in_maintenance)
    unknown = sum(1 for x in lines if x.status is ProviderStatus.UNKNOWN and not x.in_maintenance)

    def n(k: int) -> str:
        return f"{k} provider{'s' if k != 1 else ''}"

    if down:
        return "bad", f"{'Major' if down == len(lines) else 'Partial'} outage: {n(down)} down" + (f", {slow} degraded" if slow else "")
    if slow:
        return "warn", f"Degraded service: {n(slow)} impaired"
    if maint:
        return "info", f"Maintenance: {n(maint)}"
    if unknown == len(lines):
        return "idle", "Waiting for the first probes"
    return "ok", "All systems operational"


def _uptime_cell(history: ProviderHistory, window: Window) -> str:
    up = history.uptime[window]
    text = format_uptime(up.ratio)
    partial = up.ratio is not None and up.covered < 0.99 * window.seconds
    hours = up.covered / 3600
    note = f' title="over the last {hours:.1f} h: the data held so far"' if partial else ""
    mark = "*" if partial else ""
    return f'<div class="num" data-label="{window.value}"{note}>{text}{mark}</div>'


def _row(line: ProviderLine) -> str:
    word = _status_word(line)
    name = escape(line.name)
    spark = sparkline(line.history.spark, f"{line.name}: mean latency over 24 h, 30-minute steps")
    latency = format_latency(line.history.latency)  # the 24 h mean, as the badge: never the last probe's under that header
    return (
        f'<li class="row" id="p-{name}" data-provider="{name}" data-status="{word}"><div class="name">{name}</div>'
        f'<div class="st"><span class="pill s-{word}">{word}</span></div>'
        f"{_uptime_cell(line.history, Window.DAY)}{_uptime_cell(line.history, Window.WEEK)}"
        f'<div class="lat">{spark}<span>{escape(latency)}</span></div></li>'
    )


def _category(cat: Category, lines: Sequence[ProviderLine]) -> str:
    up = sum(1 for x in lines if x.status is ProviderStatus.ONLINE)
    head = '<li class="row head"><div>provider</div><div>status</div><div class="num">uptime 24 h</div><div class="num">uptime 7 d</div><div class="num">latency 24 h</div></li>'
    return (
        f'<section class="category" id="c-{cat.value}"><h2>{escape(CATEGORY_TITLES.get(cat, cat.value))}<small>{up} of {len(lines)} online</small></h2>'
        f'<ul class="rows">{head}{"".join(_row(x) for x in sorted(lines, key=lambda x: x.name))}</ul></section>'
    )


def _maintenance(lines: Sequence[ProviderLine], now: float) -> str:
    items = []
    for x in sorted(lines, key=lambda x: x.name):
        m = x.maintenance
        if m is None or m.state is MaintenanceState.NONE:
            continue
        state = "in maintenance now" if x.in_maintenance else "maintenance announced"
        window = f" from {_time(m.start)}" if m.start is not None else ""
        window += f" until {_time(m.end)}" if m.end is not None else ""
        detail = f": {escape(m.detail)}" if m.detail else ""
        items.append(f'<li data-maintenance="{escape(x.name)}"><strong>{escape(x.name)}</strong> {state}{window}{detail}</li>')
    if not items:
        return '<section id="maintenance"><h2>Maintenance</h2><p class="muted">No maintenance announced by the providers\' status sources.</p></section>'
    return f'<section id="maintenance"><h2>Maintenance</h2><ul class="plain">{"".join(items)}</ul></section>'


def _incident(b: IncidentBrief) -> str:
    explanation = b["explanation"]
    if len(explanation) > EXPLANATION_CHARS:
        explanation = explanation[:EXPLANATION_CHARS] + " [...]"
    # Each provider links to its row below (rows are `p-<name>`; a name the page does not
    # list, e.g. a disabled one, is a link to nowhere, which a browser ignores).
    providers = ", ".join(f'<a href="#p-{escape(p)}">{escape(p)}</a>' for p in b["providers"]) or "&ndash;"
    when = f"started {_time(b['started_at'])}" + (f", resolved {_time(b['resolved_at'])}" if b["resolved_at"] is not None else "")
    status = "open" if b["status"] == "open" else "resolved"
    body = f'<p class="explain">{escape(explanation)}</p>' if explanation else ""
    if status == "resolved" and body:
        body = f"<details><summary>Explanation</summary>{body}</details>"
    return (
        f'<article class="incident {status}" data-incident="{escape(b["id"])}"><h3>{escape(b["title"])}</h3>'
        f'<div class="muted">{status} &middot; {escape(b["severity"])} &middot; {when} &middot; providers: {providers}</div>{body}</article>'
    )


def _incidents(view: PageView) -> str:
    if view.incidents_error is not None:
        inner = f'<p class="warning">{escape(view.incidents_error)}</p>'
    elif not view.incidents:
        inner = '<p class="muted">No incidents recorded.</p>'
    else:
        inner = "".join(_incident(b) for b in view.incidents)
    return f'<section id="incidents"><h2>Incidents</h2>{inner}</section>'


def _disabled(items: Sequence[tuple[str, DisabledReason | None]]) -> str:
    if not items:
        return ""
    lis = "".join(f'<li data-disabled="{escape(name)}">{escape(name)}: {DISABLED_WHY.get(why, DISABLED_WHY[None])}</li>' for name, why in sorted(items))
    return f'<section id="disabled"><details><summary>Not monitored ({len(items)})</summary><ul class="plain">{lis}</ul></details></section>'


def _source(view: PageView) -> str:
    if view.history.source == "prometheus":
        text = "Uptime and latency from Prometheus."
    else:
        since = f" since {_time(view.memory_since)}" if view.memory_since is not None else " (no probe yet)"
        text = f"Uptime and latency from this exporter's memory{since}; * marks a window only partly covered."
    warning = f'<p class="warning">{escape(view.history.warning)}</p>' if view.history.warning else ""
    return f"{warning}<p class='muted'>{text}</p>"


def render_page(view: PageView) -> str:
    kind, sentence = overall(view.providers)
    by_cat = {cat: [x for x in view.providers if x.category is cat] for cat in Category}
    categories = "".join(_category(cat, lines) for cat, lines in by_cat.items() if lines)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<meta http-equiv='refresh' content='{PAGE_REFRESH}'>"
        "<link rel='icon' href='data:,'>"  # no /favicon.ico request (a 404 in the console)
        f"<title>Crypto API status</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Crypto API status</h1><div class='banner {kind}' id='overall'>{escape(sentence)}</div>"
        f"<p class='muted'>Updated {_time(view.now)}; this page reloads every {PAGE_REFRESH} s.</p></header>"
        f"<main>{_incidents(view)}{_maintenance(view.providers, view.now)}{categories}{_disabled(view.disabled)}</main>"
        f"<footer>{_source(view)}<p><a href='/'>Crypto API Exporter</a></p></footer></body></html>"
    )


# ---------------------------------------------------------------- HTTP

STATUS_BOARD = web.AppKey("status_board", StatusBoard)


def cache_control(board: StatusBoard, max_age: int) -> str:
    """`public` only when the page is (PUBLIC_STATUS): a guarded answer is one caller's."""
    return f"{'public' if board.public else 'private'}, max-age={max_age}"


async def status_page(request: web.Request) -> web.Response:
    board = request.app[STATUS_BOARD]
    html = render_page(await page_view(board))
    headers = {"Cache-Control": cache_control(board, PAGE_MAX_AGE), "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
    return web.Response(text=html, content_type="text/html", headers=headers)


def setup_status(app: web.Application, board: StatusBoard) -> StatusBoard:
    """Keep `board` in the app and feed it every probe result while the app runs."""
    app[STATUS_BOARD] = board

    async def listen(app: web.Application) -> AsyncIterator[None]:
        unsubscribe = board.control.subscribe(board.on_result)
        yield
        unsubscribe()

    app.cleanup_ctx.append(listen)
    return board
