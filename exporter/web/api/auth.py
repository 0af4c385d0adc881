"""Access control for `/api/*` and `/ws/*` (and `/metrics` with PROTECT_METRICS, `/status`
and `/badge/*` unless PUBLIC_STATUS), and CORS.

Order: CORS preflight (browsers send no credentials on it), then the IP allowlist (403),
then the token (401). `/healthz`, `/openapi.json` and `/docs` stay open."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

from aiohttp import web

from .errors import Handler, error_response, is_api_path
from .settings import ApiSettings, IPNetwork

TOKEN_QUERY_PARAMS = ("token", "api_key")  # WebSocket clients cannot always set headers
_CORS_METHODS = "GET, POST, OPTIONS"
_CORS_HEADERS = "Authorization, X-API-Key, Content-Type"


def ip_allowed(remote: str | None, networks: Iterable[IPNetwork]) -> bool:
    """True when no allowlist is set, or the peer address is in one of its networks."""
    nets = tuple(networks)
    if not nets:
        return True
    if not remote:
        return False
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in nets)


def presented_token(headers: Mapping[str, str], query: Mapping[str, str], allow_query: bool) -> str | None:
    """The token a request carries: `Authorization: Bearer`, `X-API-Key`, or (WebSocket
    only) `?token=` / `?api_key=`."""
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if headers.get("X-API-Key", "").strip():
        return headers["X-API-Key"].strip()
    if allow_query:
        for name in TOKEN_QUERY_PARAMS:
            if query.get(name):
                return query[name]
    return None


def token_valid(token: str | None, tokens: Iterable[str]) -> bool:
    if token is None:
        return False
    given = token.encode()
    # Compare against every token, in constant time, so timing does not tell which matched.
    return any([hmac.compare_digest(given, t.encode()) for t in tokens])  # noqa: C419 - a list: no short circuit


def cors_origin(origin: str | None, allowed: tuple[str, ...]) -> str | None:
    """The value of Access-Control-Allow-Origin for this request, or None for no CORS."""
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


def is_status_path(path: str) -> bool:
    """The status page and the badges (status_page.py, badges.py): PUBLIC_STATUS opens them."""
    return path == "/status" or path.startswith("/badge/")


def guarded(path: str, settings: ApiSettings) -> bool:
    return is_api_path(path) or (settings.protect_metrics and path == "/metrics") or (not settings.public_status and is_status_path(path))


def access_middleware(settings: ApiSettings) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        allow_origin = cors_origin(request.headers.get("Origin"), settings.cors_origins)
        cors = _cors_headers(allow_origin)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers and is_api_path(request.path):
            if allow_origin is None:
                return error_response(403, "origin not allowed by CORS_ORIGINS", "Origin")
            return web.Response(
                status=204,
                headers={**cors, "Access-Control-Allow-Methods": _CORS_METHODS, "Access-Control-Allow-Headers": _CORS_HEADERS, "Access-Control-Max-Age": "600"},
            )
        if guarded(request.path, settings):
            if not ip_allowed(request.remote, settings.allowed_ips):
                return error_response(403, "client address not in ALLOWED_IPS", None, cors)
            if settings.auth_enabled:
                token = presented_token(request.headers, request.query, allow_query=request.path == "/ws" or request.path.startswith("/ws/"))
                if not token_valid(token, settings.tokens):
                    detail = "missing API token (Authorization: Bearer <token> or X-API-Key)" if token is None else "invalid API token"
                    return error_response(401, detail, None, {**cors, "WWW-Authenticate": 'Bearer realm="crypto-api-exporter"'})
        response = await handler(request)
        if cors and not response.prepared:
            response.headers.update(cors)
        return response

    return access


def _cors_headers(allow_origin: str | None) -> dict[str, str]:
    if allow_origin is None:
        return {}
    headers = {"Access-Control-Allow-Origin": allow_origin}
    if allow_origin != "*":
        headers["Vary"] = "Origin"
    return headers
