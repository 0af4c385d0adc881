"""SVG badges per provider (issue 16): `/badge/{provider}/health.svg`,
`/badge/{provider}/uptime.svg?window=24h|7d`, `/badge/{provider}/latency.svg`.

Shields-like flat badges (svg.py) for READMEs and wikis, cacheable: `Cache-Control`
with a short max-age and an `ETag` (a repeat request with `If-None-Match` gets a 304).
They read the status page's board (status_page.py), so they show what the page shows,
from the same source. An unknown provider is a JSON 404 naming it."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiohttp import web

from .errors import ApiError
from .models import NAME_MAX, NAME_PATTERN
from .query import EnumParam, Schema, _show
from .status_page import STATUS_BOARD, StatusBoard, cache_control
from .svg import badge, format_latency, format_uptime, latency_color, status_color, uptime_color
from .uptime import NO_HISTORY, Window

BADGE_MAX_AGE = 60  # seconds: GitHub's image proxy and browsers refetch about this often
SVG = "image/svg+xml"
WINDOW = EnumParam("window", Window, "uptime window: 24h (default) or 7d")


@dataclass(frozen=True)
class PathName:
    """The `{provider}` of a badge's path (declared in the route table's path_params)."""

    name: str
    description: str

    def parse(self, match_info: Mapping[str, str], known: Collection[str] | None = None) -> str:
        value = match_info.get(self.name, "")
        if known is not None and value not in known:
            raise ApiError(404, f"{self.name}: unknown {self.name} {_show(value)}", self.name)
        return value

    def schema(self) -> Schema:
        return {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX}


PROVIDER = PathName("provider", "a configured provider (probed or disabled); 404 otherwise")


def svg_response(request: web.Request, board: StatusBoard, svg: str) -> web.Response:
    """The badge with its validators: 304 when the client holds this very SVG."""
    etag = '"' + hashlib.sha256(svg.encode()).hexdigest()[:20] + '"'
    # An SVG opened on its own is a document: it may run nothing and load nothing.
    headers = {
        "Cache-Control": cache_control(board, BADGE_MAX_AGE),
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(text=svg, content_type=SVG, headers=headers)


def _board_and_provider(request: web.Request) -> tuple[StatusBoard, str]:
    board = request.app[STATUS_BOARD]
    return board, PROVIDER.parse(request.match_info, board.known())


async def health_badge(request: web.Request) -> web.Response:
    board, name = _board_and_provider(request)
    ps = board.store.providers.get(name) or board.store.disabled[name]
    report = ps.maintenance(board.clock())
    in_maintenance = report is not None and report.active(board.clock())
    status = ps.status()
    word = "maintenance" if in_maintenance else status.value
    return svg_response(request, board, badge(name, word, status_color(status, in_maintenance)))


async def uptime_badge(request: web.Request) -> web.Response:
    board, name = _board_and_provider(request)
    window = WINDOW.parse(request.query) or Window.DAY
    history = (await board.history()).providers.get(name, NO_HISTORY)
    ratio = history.uptime[window].ratio
    return svg_response(request, board, badge(f"uptime {window.value}", format_uptime(ratio), uptime_color(ratio)))


async def latency_badge(request: web.Request) -> web.Response:
    board, name = _board_and_provider(request)
    history = (await board.history()).providers.get(name, NO_HISTORY)
    return svg_response(request, board, badge("latency 24h", format_latency(history.latency), latency_color(history.latency)))
