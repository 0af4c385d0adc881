"""Reading a request's JSON object body: bounded in size, time and nesting."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ... import limits, safejson
from .errors import ApiError, client_gone


async def read_json_body(request: web.Request, required: bool, max_bytes: int = limits.API_BODY_BYTES) -> dict[str, Any]:
    """The JSON object body; an empty body is `{}` unless `required`. Bounded in size
    (decoded bytes: aiohttp inflates a Content-Encoding as it is read), in the time it
    takes to arrive, and in nesting (safejson: never a RecursionError)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"body: larger than {max_bytes} bytes", "body")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # The server does not inflate request bodies (web/protocol.py: a small compressed
        # body can stand for a huge one); a small JSON object gains nothing from it.
        raise ApiError(415, "body: send it uncompressed (no Content-Encoding)", "body")
    try:
        async with asyncio.timeout(limits.API_BODY_SECONDS):
            raw = await _read_capped(request, max_bytes)
    except TimeoutError:
        raise ApiError(408, f"body: not received within {limits.API_BODY_SECONDS:g} s", "body") from None
    except web.RequestPayloadError:
        if client_gone(request):
            raise ConnectionResetError("the client left while its body was read") from None  # a 499
        # Chunks that break after the head (protocol.py fails the read, and closes the
        # connection after this answer).
        raise ApiError(400, "body: malformed framing (Transfer-Encoding: chunked)", "body") from None
    if not raw.strip():
        if required:
            raise ApiError(400, 'body: a JSON object is required, e.g. {"provider": "etherscan"}', "body")
        return {}
    try:
        body = safejson.loads(raw, max_depth=limits.API_JSON_DEPTH)
    except safejson.JsonError as e:
        raise ApiError(400, f"body: malformed JSON ({e})", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body: must be a JSON object", "body")
    return body


async def _read_capped(request: web.Request, max_bytes: int) -> bytes:
    raw = b""
    while chunk := await request.content.read(max_bytes + 1 - len(raw)):  # chunked bodies come in pieces
        raw += chunk
        if len(raw) > max_bytes:
            raise ApiError(413, f"body: larger than {max_bytes} bytes", "body")
    return raw
