"""JSON errors: every 4xx of the API is `{"error", "detail", "field"}`, never HTML or a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest

from .models import Error, ErrorCode

log = structlog.get_logger()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# nginx's "client closed request": what a request is counted as (crypto_api_exporter_
# requests_total{code="499"}) when its client left before the answer. Never sent.
CLIENT_CLOSED = 499

_CODES: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal_error",
    502: "bad_gateway",
}


class ApiError(Exception):
    """A client mistake: `field` names what is wrong (a parameter or body field)."""

    def __init__(self, status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers or {}


def error_body(status: int, detail: str, field: str | None = None) -> Error:
    return {"error": _CODES.get(status, "error"), "detail": detail, "field": field}


def error_response(status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, detail, field), status=status, headers=headers)


def is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/ws/")) or path in ("/api", "/ws")


def client_gone(request: BaseRequest) -> bool:
    """The client closed its connection: a ConnectionError then is its leaving, not a fault."""
    transport = request.transport
    return transport is None or transport.is_closing()


def request_route(request: BaseRequest) -> str | None:
    """The route template a request matched, or None (a request aiohttp could not parse
    has none, nor a raw path to show: it could hold anything)."""
    try:
        resource = request.match_info.route.resource  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # not routed (yet)
        return None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError -> its JSON; aiohttp's HTML 4xx under /api and /ws -> JSON; a bug -> a
    JSON 500 with no exception text (it could hold anything)."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.detail, e.field, e.headers)
    except web.HTTPException as e:
        if not is_api_path(request.path) or e.status < 400:
            raise
        detail = {404: f"no route {request.path}", 405: f"method {request.method} not allowed on {request.path}"}.get(e.status, e.reason)
        headers = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return error_response(e.status, detail, None, headers)
    except Exception as e:
        if isinstance(e, ConnectionError) and client_gone(request):
            # The client left mid-request (a read or a write found the connection closed):
            # nothing failed here and nobody is left to answer. Debug, and counted as 499.
            log.debug("client_disconnected", route=request_route(request), method=request.method)
            return web.Response(status=CLIENT_CLOSED)
        # Answer JSON, log the type only.
        log.exception("api_handler_failed", route=request_route(request), method=request.method)
        return error_response(500, "internal error; see the exporter's log")
