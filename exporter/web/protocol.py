"""The HTTP connection handler, for a port that hostile clients can reach.

aiohttp's `RequestHandler` (one per connection) with what it lacks:

- a bound on the time a client may take to send a request head (`HTTP_HEAD_SECONDS`): a
  client that sends its headers a byte at a time (slowloris) is cut off there instead of
  holding the connection until the keep-alive timer (an hour by default) ends it;
- its own 4xx answers (malformed request line, header too long, too many headers, bad
  chunking) in the API's JSON error shape instead of text/plain that echoes the request;
- those errors logged as one structured line (status, exception type, remote address,
  route), never with the raw request: aiohttp's own log line carries the offending header
  or query string, and with it any token the client sent;
- a body whose framing breaks after its head (a bad chunk) fails the handler's read at
  once instead of leaving it waiting for bytes that will never count, and a broken body
  (that, or an undecodable Content-Encoding) ends the connection with its answer, said
  in it (Connection: close), instead of a keep-alive answer, an "Unhandled exception"
  error line and a dropped connection.

How it is plugged in, and why this way. aiohttp takes no handler class through a public
option: `web.Server.__call__` builds a plain `RequestHandler`, and `web.AppRunner` builds
its `Server` in a private method. Of the ways in, `ExporterSite` is the least fragile:
a `web.BaseSite` (the documented base of every site) whose listening socket's protocol
factory builds this subclass with the runner's own `web.Server` as its manager, so the
application, its middlewares, start-up, shutdown and connection tracking are aiohttp's,
untouched. The alternatives: subclassing `AppRunner` means overriding its private
`_make_server`; a protocol wrapper around the handler sees bytes but not where a request
head ends, and cannot change the handler's error answers; `handler_args` only reach the
constructor's options.

It overrides RequestHandler's public methods (`connection_made`, `data_received`,
`connection_lost`, `handle_error`, `finish_response`, `log_exception`) and calls
`force_close`; the three attributes of its state it reads are named in `INTERNALS`
below, in one place: tests/api/test_hostile.py checks they are still there, so an
aiohttp upgrade that moves one fails a test rather than silently dropping a bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import http_exceptions, web
from aiohttp.web_request import BaseRequest

from .. import limits
from .api.errors import client_gone, error_body, request_route

log = structlog.get_logger()

# RequestHandler's own state this module reads (see the module's docstring): the number of
# request heads its parser has produced on this connection (error placeholders included),
# the future its request loop waits on while it has no request to handle (idle), and the
# request being handled.
INTERNALS = ("_request_count", "_waiter", "_current_request")


class ExporterRequestHandler(web.RequestHandler):
    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, head_timeout: float = limits.HTTP_HEAD_SECONDS, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._timers = loop
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._heads_at_arming = 0

    # ------------------------------------------------------------ the request head's deadline

    def _heads(self) -> int:
        count: int = self._request_count
        return count

    def _idle(self) -> bool:
        """Waiting for the next request: not handling one, none parsed and queued."""
        waiter: asyncio.Future[None] | None = self._waiter
        return waiter is not None and not waiter.done()

    def _arm_head_timer(self) -> None:
        self._heads_at_arming = self._heads()
        self._head_timer = self._timers.call_later(self._head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # From the connection on, as nginx's client_header_timeout: a client that connects
        # and sends nothing, or too little, is cut off as one that sends slowly is.
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        idle, heads = self._idle(), self._heads()
        super().data_received(data)
        if self._heads() != heads:
            self._cancel_head_timer()  # a head is complete (or refused): its deadline is over
            # A head cannot complete while the body before it is still open (the parser
            # reads bodies whole, by their length or chunks), unless the parser gave up on
            # that body: then no more of it will arrive, so its reader must stop waiting.
            self._fail_open_body()
        elif idle and data and self._head_timer is None:
            self._arm_head_timer()  # the first bytes of a request on a kept-alive connection

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self._heads() != self._heads_at_arming:
            return  # closed, or the head arrived in time
        # Debug: a slow or silent client is not the server's problem, and a flood of them
        # must not flood the log either.
        log.debug("request_head_timeout", remote=_peer(self.transport), seconds=self._head_timeout)
        self.force_close()

    def _fail_open_body(self) -> None:
        request: BaseRequest | None = self._current_request
        if request is not None and not request.content.is_eof():
            # The reader fails now (the handler answers 400: routes.read_json_body), and
            # finish_response closes the connection after that answer (the parser's own
            # 400 for the same error, queued behind it, would be a second answer).
            request.content.set_exception(web.RequestPayloadError("the body's framing is malformed"))

    # ------------------------------------------------------------ a body that broke

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None) -> tuple[web.StreamResponse, bool]:
        """Before an answer goes out: if its request's body broke (bad chunking, an
        undecodable Content-Encoding), the parser is done with this connection. Say so in
        the answer (Connection: close), and skip aiohttp's lingering read over the rest,
        which would raise the body's error and log it as an unhandled exception."""
        body = request.content
        failure = body.exception()
        if failure is not None and not body.is_eof() and not isinstance(failure, ConnectionError):
            cause = failure.__cause__ or failure
            log.info("http_bad_request", status=getattr(resp, "status", None), error=type(cause).__name__, route=request_route(request), remote=request.remote)
            body.feed_eof()
            if isinstance(resp, web.StreamResponse):
                resp.force_close()
        return await super().finish_response(request, resp, start_time)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp logs here what escapes a request's handling, a body that breaks while
        it reads the rest after the answer among it: that is a client's mistake, one info
        line like the others; anything else keeps aiohttp's error line (a JSON line with
        its traceback, through logs.ToStructlog)."""
        exc = kw.get("exc_info")
        if isinstance(exc, (web.RequestPayloadError, http_exceptions.HttpProcessingError)):
            cause = exc.__cause__ or exc
            log.info("http_bad_request", status=None, error=type(cause).__name__, route=None, remote=_peer(self.transport) if self.transport else None)
            return
        super().log_exception(*args, **kw)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    # ------------------------------------------------------------ aiohttp's own error answers

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        """Answer a request aiohttp could not parse (400) or whose handler raised past the
        middlewares (500, 504): the API's JSON error, and one log line without the request.
        `message` is aiohttp's text, which can quote the raw request: never used."""
        route = request_route(request)
        error = type(exc).__name__ if exc is not None else None
        remote = request.remote
        if status >= 500 and isinstance(exc, ConnectionError) and client_gone(request):
            log.debug("client_disconnected", route=route, method=request.method, remote=remote)
        elif status >= 500:
            log.error("http_request_failed", status=status, error=error, route=route, remote=remote, exc_info=exc)
        elif isinstance(exc, http_exceptions.BadHttpMethod):
            # What a TLS handshake or a scanner sends to an HTTP port: routine on a public
            # address, so debug, as aiohttp has it.
            log.debug("http_bad_request", status=status, error=error, route=route, remote=remote)
        else:
            log.info("http_bad_request", status=status, error=error, route=route, remote=remote)
        if request.writer.output_size > 0:
            # Part of an answer is out already: another cannot follow (what aiohttp does too).
            raise ConnectionError("the response was already started; the connection is closed")
        detail, field = describe(status, exc)
        response = web.json_response(error_body(status, detail, field), status=status)
        response.force_close()
        return response


def describe(status: int, exc: BaseException | None) -> tuple[str, str | None]:
    """A fixed description of what was wrong (never the exception's text: it quotes the
    request) and the field at fault."""
    if status >= 500:
        return ("the request timed out" if status == 504 else "internal error; see the exporter's log"), None
    if isinstance(exc, http_exceptions.PayloadEncodingError):
        return "body: malformed framing or encoding (Transfer-Encoding: chunked, Content-Length or Content-Encoding)", "body"
    if isinstance(exc, http_exceptions.LineTooLong):
        return f"request line or a header longer than {limits.HTTP_REQUEST_LINE_BYTES} bytes", None
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return "malformed request line: not an HTTP method", None
    if isinstance(exc, http_exceptions.BadStatusLine):
        return "malformed request line (METHOD /path HTTP/1.1)", None
    if isinstance(exc, http_exceptions.InvalidURLError):
        return "malformed request target (URL)", None
    if isinstance(exc, http_exceptions.InvalidHeader):
        return "malformed header", None
    if isinstance(exc, http_exceptions.HttpProcessingError):
        # The parser's reason is the text before the first colon (llhttp's fixed wording,
        # e.g. "Invalid character in chunk size"); the client's bytes come after it.
        reason = exc.message.split(":", 1)[0].split("\n", 1)[0].lower()
        if reason.startswith("too many headers"):
            return f"more than {limits.HTTP_HEADERS} headers", None
        if any(word in reason for word in ("chunk", "content-length", "transfer-encoding")):
            return "body: malformed framing (Transfer-Encoding: chunked or Content-Length)", "body"
        if "header" in reason:
            return "malformed header", None
    return "malformed request (request line, headers or framing)", None


def _peer(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class ExporterSite(web.BaseSite):
    """A TCP site whose connections are `ExporterRequestHandler`s (see the module's
    docstring for why a site). The parser's size bounds and both timeouts come from
    exporter/limits.py unless a test passes shorter ones."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        head_timeout: float = limits.HTTP_HEAD_SECONDS,
        keepalive_timeout: float = limits.HTTP_KEEPALIVE_SECONDS,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._head_timeout = head_timeout
        self._keepalive_timeout = keepalive_timeout

    @property
    def name(self) -> str:
        host = self._host or "0.0.0.0"
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        loop = asyncio.get_running_loop()

        def connection() -> ExporterRequestHandler:
            return ExporterRequestHandler(
                server,
                loop=loop,
                head_timeout=self._head_timeout,
                keepalive_timeout=self._keepalive_timeout,
                lingering_time=limits.HTTP_LINGER_SECONDS,
                max_line_size=limits.HTTP_REQUEST_LINE_BYTES,
                max_field_size=limits.HTTP_HEADER_BYTES,
                max_headers=limits.HTTP_HEADERS,
                access_log=None,  # request logs would carry query strings; metrics count requests
                # Request bodies are never inflated: a 1 MB gzip body inflates to 1 GiB, and
                # aiohttp inflates in the parser, on the event loop, even the rest of a body
                # it only reads to drop (measured: 4 s of CPU, the loop stalled 4 s). The
                # API takes small JSON objects; routes.read_json_body refuses an encoded body.
                auto_decompress=False,
            )

        self._server = await loop.create_server(connection, self._host or None, self._port, backlog=self._backlog)
