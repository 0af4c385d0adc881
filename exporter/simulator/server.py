"""The provider simulator: an aiohttp app on loopback that answers configured endpoints
like the real providers do, with faults injected over a small JSON control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

import structlog
from aiohttp import web

from .. import limits, safejson
from ..config import AuthType, Config, Endpoint, Provider, QuotaHeaders, ResetFormat
from . import faults, hostile, payloads
from .chains import ChainSim, NodeFault
from .faults import MAX_HANG_SECONDS, FaultSpec, FaultStore
from .feeds import FeedSimulator

log = structlog.get_logger()

_KEY = object()  # the {key} wildcard segment
_GARBAGE = b"\x00\x9c\xff<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body>\xfe"
DEFAULT_QUOTA_LIMIT = 120.0
DEFAULT_QUOTA_WINDOW = 60.0
SLOW_BODY_PERIOD = 1.0  # seconds between two bytes of a slow_body answer


def simulator_config(config: Config, base_url: str) -> Config:
    """A copy of `config` whose providers all point at the simulator at `base_url`.

    `https://mainnet.infura.io/v3/{key}` becomes `{base_url}/sim/infura/v3/{key}`: the
    path (and any `{key}` placeholder) is kept, everything else is unchanged.
    """
    base = base_url.rstrip("/")

    def moved(p: Provider) -> Provider:
        own = f"{base}/sim/{p.name}{urlparse(p.base_url).path}"
        # A status source on another host (a status page) is served under the provider's prefix too.
        endpoints = tuple(replace(e, status=replace(e.status, base_url=own)) if e.status and e.status.base_url else e for e in _chain_urls(p, base))
        return replace(p, base_url=own, endpoints=endpoints)

    return config.with_providers(tuple(moved(p) for p in config.providers))


# ---- chain heads (issue 11): a chain_head endpoint gets its own URL, /sim/{provider}/~{endpoint}/...
def _chain_urls(p: Provider, base: str) -> tuple[Endpoint, ...]:
    return tuple(replace(ep, url=f"{base}/sim/{p.name}/~{ep.name}{_chain_path(p, ep)}") if ep.chain is not None else ep for ep in p.endpoints)


def _chain_path(p: Provider, ep: Endpoint) -> str:
    """The path of the node's real URL (with any {key}), kept so path keys still work."""
    return urlparse(ep.url or p.base_url + ep.path).path.rstrip("/")


def _chain_template(p: Provider, ep: Endpoint) -> tuple[Any, ...]:
    path = _chain_path(p, ep)
    if path.startswith(f"/sim/{p.name}/~{ep.name}"):  # served from a simulator_config() copy
        path = path[len(f"/sim/{p.name}/~{ep.name}") :]
    return tuple(_KEY if s == "{key}" else s for s in path.split("/")[1:] if s)


@dataclass(frozen=True)
class _Route:
    provider: Provider
    endpoint: Endpoint
    segments: tuple[Any, ...]  # str or _KEY
    rpc_method: str | None

    def match(self, method: str, segments: list[str], query: Any, body: Any) -> tuple[int, str | None] | None:
        """(specificity score, key from the path) when this route serves the request."""
        if method != self.endpoint.method.value:
            return None
        key = None
        tpl = self.segments
        if len(segments) == len(tpl) - 1 and tpl and tpl[-1] is _KEY:
            segments = [*segments, ""]  # a key-less URL such as /v3/ still finds its endpoint
        if len(segments) != len(tpl):
            return None
        for want, got in zip(tpl, segments, strict=True):
            if want is _KEY:
                key = got
            elif want != got:
                return None
        for name, value in self.endpoint.params.items():
            if query.get(name) != value:
                return None
        score = len(self.endpoint.params)
        if self.rpc_method is not None:
            if not isinstance(body, dict) or body.get("method") != self.rpc_method:
                return None
            score += 1
        return score, key


def _split(path: str) -> list[str]:
    path = re.sub(r"/+", "/", path)
    if path != "/":
        path = path.rstrip("/")
    return path.split("/")


def _routes(config: Config) -> dict[str, list[_Route]]:
    out: dict[str, list[_Route]] = {}
    for p in config.providers:
        prefix = urlparse(p.base_url).path
        sim_prefix = f"/sim/{p.name}"
        if prefix.startswith(sim_prefix):  # built from a simulator_config() copy
            prefix = prefix[len(sim_prefix) :]
        routes = []
        for ep in p.endpoints:
            path = prefix.rstrip("/") + ("/" + ep.path.lstrip("/") if ep.path else "")
            segments = tuple(_KEY if s == "{key}" else s for s in _split(path or "/"))
            body = ep.json if isinstance(ep.json, dict) else None
            rpc = str(body["method"]) if body and "jsonrpc" in body and "method" in body else None
            routes.append(_Route(p, ep, segments, rpc))
        out[p.name] = routes
    return out


class _Quota:
    """Climbing usage per provider and quota scope, reset every window."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], tuple[float, float]] = {}  # -> (window start, used)

    def headers(self, provider: str, specs: tuple[QuotaHeaders, ...], now: float, *, remaining: int | None = None, exhausted: bool = False) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in specs:
            window = spec.window or DEFAULT_QUOTA_WINDOW
            limit = spec.limit_value or DEFAULT_QUOTA_LIMIT
            start = math.floor(now / window) * window
            was_start, used = self._state.get((provider, spec.scope), (start, 0.0))
            used = (used if was_start == start else 0.0) + 1
            self._state[(provider, spec.scope)] = (start, used)
            if remaining is not None:
                used = max(0.0, limit - remaining)
            if exhausted:
                used = max(used, limit)
            left = max(0.0, limit - used)
            reset_at = start + window
            if spec.used:
                out[spec.used] = str(int(used))
            if spec.limit:
                out[spec.limit] = str(int(limit))
            if spec.remaining:
                out[spec.remaining] = str(int(left))
            if spec.reset:
                out[spec.reset] = _reset_value(reset_at, now, spec.reset_format)
        return out


def _reset_value(reset_at: float, now: float, fmt: ResetFormat) -> str:
    if fmt is ResetFormat.EPOCH_MS:
        return str(int(reset_at * 1000))
    if fmt is ResetFormat.DELTA_S:
        return str(max(0, math.ceil(reset_at - now)))
    return str(int(reset_at))  # epoch seconds, also what `auto` reads best


class Simulator:
    """Answers `/sim/{provider}/...` like the configured providers; see the module doc."""

    def __init__(self, config: Config, *, seed: int | None = None, max_hang: float = MAX_HANG_SECONDS, clock: Callable[[], float] = time.time) -> None:
        """`clock` is the wall clock of payload timestamps and quota windows: tests fix
        it, so that a minute boundary cannot pass between two requests."""
        self._config = config
        self._clock = clock
        self._routes = _routes(config)
        self._providers = {p.name: p for p in config.providers}
        self.faults = FaultStore()
        self.market = payloads.Market(random.Random(seed))
        self._frozen: dict[tuple[str, str], payloads.Market] = {}  # per endpoint under a `frozen` fault
        self._maintenance_since: dict[tuple[str, str], float] = {}  # (provider, mode) -> first seen
        self._counts: Counter[tuple[str, str]] = Counter()
        self._unmatched: Counter[str] = Counter()
        self._quota = _Quota()
        self._max_hang = max_hang
        self._closing: asyncio.Event | None = None
        self._bomb: asyncio.Future[bytes] | None = None  # built on first use, then kept
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._app = web.Application()
        self._app.router.add_get("/control/health", self._control_health)
        self._app.router.add_get("/control/faults", self._control_list)
        self._app.router.add_post("/control/faults", self._control_set)
        self._app.router.add_delete("/control/faults", self._control_clear)
        self._app.router.add_get("/control/requests", self._control_requests)
        # Exchange WebSocket feeds (/ws/feeds/{venue}, /control/feeds): simulator/feeds.py.
        self.feeds = FeedSimulator(seed=seed, clock=clock)
        self.feeds.mount(self._app)
        self.chains = ChainSim(clock)  # chain heads (issue 11)
        self.chains.update(config)
        self._app.router.add_get("/control/chains", self._control_chains_list)
        self._app.router.add_post("/control/chains", self._control_chains_set)
        self._app.router.add_delete("/control/chains", self._control_chains_clear)
        self._app.router.add_route("*", "/sim/{provider}", self._handle)
        self._app.router.add_route("*", "/sim/{provider}/{tail:.*}", self._handle)

    # ------------------------------------------------------------ lifecycle

    @property
    def app(self) -> web.Application:
        return self._app

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def config(self) -> Config:
        return self._config

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._closing = asyncio.Event()
        # No access log: query strings may carry API keys.
        self._runner = web.AppRunner(self._app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._port = int(self._runner.addresses[0][1]) if self._runner.addresses else port
        log.info("simulator_started", host=host, port=self._port, providers=len(self._providers))
        return self._port

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        await self.feeds.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("simulator_stopped", port=self._port)

    def update_config(self, config: Config) -> None:
        """Serve a reloaded config; faults and counters stay."""
        self._config = config
        self._routes = _routes(config)
        self._providers = {p.name: p for p in config.providers}
        self.chains.update(config)

    # ------------------------------------------------------------ faults and counters

    def set_fault(self, spec: FaultSpec) -> None:
        self.faults.set(spec)
        log.info("simulator_fault_set", **spec.to_json())  # key values masked by to_json

    def clear_faults(self, provider: str | None = None, endpoint: str | None = None) -> int:
        return self.faults.clear(provider, endpoint)

    def request_count(self, provider: str, endpoint: str | None = None) -> int:
        if endpoint is not None:
            return self._counts[(provider, endpoint)]
        return sum(n for (p, _), n in self._counts.items() if p == provider)

    # ------------------------------------------------------------ control API

    async def _control_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _control_list(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in self.faults.active()]})

    async def _control_set(self, request: web.Request) -> web.Response:
        try:
            data = safejson.loads(await request.read() or b"null", max_depth=limits.API_JSON_DEPTH)
        except safejson.JsonError:
            return _bad_request("body", "must be a JSON object")
        try:
            spec = FaultSpec.from_json(data)
        except ValueError as e:
            field_name, _, message = str(e).partition(": ")
            return _bad_request(field_name, message)
        if spec.provider != "*":
            provider = self._providers.get(spec.provider)
            if provider is None:
                return _bad_request("provider", f"unknown provider {spec.provider!r}")
            if spec.endpoint and spec.endpoint not in {e.name for e in provider.endpoints}:
                return _bad_request("endpoint", f"provider {spec.provider!r} has no endpoint {spec.endpoint!r}")
        self.set_fault(spec)
        return web.json_response({"fault": spec.to_json()}, status=201)

    async def _control_clear(self, request: web.Request) -> web.Response:
        cleared = self.clear_faults(request.query.get("provider") or None, request.query.get("endpoint") or None)
        return web.json_response({"cleared": cleared})

    async def _control_requests(self, request: web.Request) -> web.Response:
        out: dict[str, dict[str, int]] = {}
        for (p, e), n in sorted(self._counts.items()):
            out.setdefault(p, {})[e] = n
        return web.json_response({"requests": out, "unmatched": dict(self._unmatched)})

    # ---- chain heads (issue 11): node faults
    def set_chain_fault(self, provider: str, endpoint: str, fault: NodeFault) -> None:
        self.chains.set_fault(provider, endpoint, fault)
        log.info("simulator_chain_fault_set", provider=provider, endpoint=endpoint, **fault.to_json())

    async def _control_chains_list(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.chains.faults()})

    async def _control_chains_set(self, request: web.Request) -> web.Response:
        try:
            data = safejson.loads(await request.read() or b"null", max_depth=limits.API_JSON_DEPTH)
        except safejson.JsonError:
            return _bad_request("body", "must be a JSON object")
        if not isinstance(data, dict):
            return _bad_request("body", "must be a JSON object")
        provider, endpoint = data.pop("provider", None), data.pop("endpoint", None)
        if not isinstance(provider, str) or not isinstance(endpoint, str) or not self.chains.knows(provider, endpoint):
            return _bad_request("endpoint", "provider and endpoint must name a chain_head endpoint")
        unknown = sorted(set(data) - set(NodeFault().to_json()))
        if unknown:
            return _bad_request(unknown[0], "unknown field")
        try:
            fault = NodeFault.from_json(data)
        except ValueError as e:
            field_name, _, message = str(e).partition(": ")
            return _bad_request(field_name, message)
        self.set_chain_fault(provider, endpoint, fault)
        return web.json_response({"fault": {"provider": provider, "endpoint": endpoint, **fault.to_json()}}, status=201)

    async def _control_chains_clear(self, request: web.Request) -> web.Response:
        return web.json_response({"cleared": self.chains.clear(request.query.get("provider") or None)})

    def _chain_route(self, name: str, segments: list[str]) -> tuple[_Route, str | None, str] | None:
        """(route, key from the path, sub-path) of a request to /sim/{provider}/~{endpoint}/..."""
        provider = self._providers.get(name)
        if provider is None or len(segments) < 2 or not segments[1].startswith("~"):
            return None
        ep_name = segments[1][1:]
        route = next((r for r in self._routes[name] if r.endpoint.name == ep_name and r.endpoint.chain is not None), None)
        if route is None:
            return None
        template, rest = _chain_template(provider, route.endpoint), segments[2:]
        if len(rest) < len(template) - 1 or (len(rest) == len(template) - 1 and template[-1:] != (_KEY,)):
            return None
        key = None
        for want, got in zip(template, [*rest, ""], strict=False):
            if want is _KEY:
                key = got
            elif want != got:
                return None
        return route, key, "/" + "/".join(rest[len(template) :]) if rest[len(template) :] else ""

    # ------------------------------------------------------------ provider traffic

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["provider"]
        routes = self._routes.get(name)
        if routes is None:
            return web.json_response({"error": f"unknown provider {name!r}"}, status=404)
        raw = await request.read() if request.can_read_body else b""
        body: Any = None
        if raw:
            try:
                body = safejson.loads(raw)
            except safejson.JsonError:
                body = None
        segments = _split("/" + request.match_info.get("tail", ""))
        best: tuple[int, _Route, str | None] | None = None
        chain = self._chain_route(name, segments)
        if chain is not None:
            self._counts[(name, chain[0].endpoint.name)] += 1
            return await self._respond(request, chain[0], body, chain[1], self.faults.take(name, chain[0].endpoint.name), chain[2])
        for route in routes:
            found = route.match(request.method, segments, request.query, body)
            if found and (best is None or found[0] > best[0]):
                best = (found[0], route, found[1])
        if best is None:
            self._unmatched[name] += 1
            # Never echo the path: it may hold a key.
            return web.json_response({"error": f"no endpoint of provider {name!r} matches this request"}, status=404)
        _, route, path_key = best
        ep_name = route.endpoint.name
        self._counts[(name, ep_name)] += 1
        fault = self.faults.take(name, ep_name)
        try:
            return await self._respond(request, route, body, path_key, fault)
        finally:
            log.debug("simulator_request", provider=name, endpoint=ep_name, fault=bool(fault))

    async def _respond(
        self, request: web.Request, route: _Route, body: Any, path_key: str | None, fault: FaultSpec | None, chain_path: str | None = None
    ) -> web.StreamResponse:
        provider = route.provider
        if fault and fault.latency_ms:
            await self._sleep(fault.latency_ms / 1000)
        if fault and fault.disconnect:
            return self._drop(request)
        if fault and fault.hang:
            await self._hang(request)
            return self._drop(request)
        if fault and fault.redirect:
            # A moved host redirects every request, with a key or without one.
            redirect = fault.redirect
            return web.Response(status=redirect.status, headers={"Location": redirect.to + request.path_qs})
        now = self._clock()
        stale = fault.stale_seconds if fault else 0.0
        ctx = payloads.Ctx(provider.name, route.endpoint.name, now - stale, self._market(provider.name, route.endpoint.name, fault), request.query, body, stale)
        if fault and fault.maintenance:
            since = self._maintenance_since.setdefault((provider.name, fault.maintenance), now)
            ctx = replace(ctx, maintenance=(fault.maintenance, since))
        elif route.endpoint.status is not None:  # announced afresh when the next maintenance fault comes
            for mode in faults.MAINTENANCE_MODES:
                self._maintenance_since.pop((provider.name, mode), None)
        quota = self._quota.headers(
            provider.name,
            provider.quota_headers,
            now,
            remaining=fault.quota_remaining if fault else None,
            exhausted=bool(fault and (fault.rate_limit or fault.status in (418, 429))),
        )
        if not self._key_ok(request, provider, path_key, fault):
            status = payloads.AUTH_STATUS.get(provider.name, 401)
            return _json(payloads.error_body(provider.name, "auth", ctx), status, quota)
        if fault and fault.status is not None:
            kind = "rate_limit" if fault.status in (402, 418, 429, 430) else "auth" if fault.status in (401, 403) else "generic"
            headers = dict(quota)
            if fault.status in (418, 429):
                headers["Retry-After"] = "30"
            return _json(payloads.error_body(provider.name, kind, ctx), fault.status, headers)
        if fault and fault.rate_limit:
            headers = {**quota, "Retry-After": str(max(0, math.ceil(fault.rate_limit.retry_after)))}
            return _json(payloads.error_body(provider.name, "rate_limit", ctx), 429, headers)
        if fault and fault.body_error:
            return _json(payloads.error_body(provider.name, fault.body_error, ctx), 200, quota)
        status = 200
        if chain_path is not None:  # a chain node (issue 11): its head on the simulator's clock
            status, payload = self.chains.answer(provider.name, route.endpoint.name, request.method, chain_path, body)
        else:
            payload = payloads.generator_for(provider.name, route.endpoint.name, body)(ctx)
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain"
        else:
            data, content_type = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        headers = {**quota, "Content-Type": content_type}
        if fault and fault.oversized_bytes and not (fault.garbage or fault.gzip_bomb or fault.deep_json):
            headers["Content-Type"] = "application/json"
            return await self._stream(request, headers, hostile.oversized(payload, fault.oversized_bytes), fault)
        if fault and fault.deep_json:
            data, headers["Content-Type"] = hostile.deep_json(fault.deep_json), "application/json"
        if fault and fault.truncated:
            data = data[: max(1, len(data) // 2)]
        if fault and fault.garbage:
            data = _GARBAGE
        if fault and fault.gzip_bomb:
            data, headers["Content-Type"], headers["Content-Encoding"] = await self._gzip_bomb(), "application/json", "gzip"
        if fault and fault.slow_body:
            return await self._trickle(request, headers, data)
        return web.Response(body=data, status=status, headers=headers)

    def _market(self, provider: str, endpoint: str, fault: FaultSpec | None) -> payloads.Market:
        """The live market, or the one frozen when this endpoint's `frozen` fault began."""
        if fault is not None and fault.frozen:
            return self._frozen.setdefault((provider, endpoint), payloads.FrozenMarket(self.market))
        self._frozen.pop((provider, endpoint), None)
        return self.market

    async def _gzip_bomb(self) -> bytes:
        """The bomb, built once in a thread (a third of a second of CRC-32 the event loop
        should not wait for) and shared by every request that arrives meanwhile."""
        if self._bomb is None:
            self._bomb = asyncio.get_running_loop().run_in_executor(None, hostile.gzip_bomb)
        # shield: a client that hangs up must not cancel the build the others wait for.
        return await asyncio.shield(self._bomb)

    async def _stream(self, request: web.Request, headers: dict[str, str], chunks: Iterator[bytes], fault: FaultSpec) -> web.StreamResponse:
        """A body sent in pieces without a Content-Length (chunked), as it is generated: a
        64 MiB answer never sits in the simulator's memory, and the client cannot tell its
        size before reading it. `truncated` stops it halfway; `slow_body` trickles it."""
        if fault.truncated and fault.oversized_bytes:
            chunks = _take(chunks, max(1, fault.oversized_bytes // 2))
        if fault.slow_body:
            # A client gives up long before the first MiB at a byte a second: no need for more.
            return await self._trickle(request, headers, b"".join(_take(chunks, 1 << 20)))
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client stopped reading: the answer ends here
            for chunk in chunks:
                await resp.write(chunk)
        return resp

    async def _trickle(self, request: web.Request, headers: dict[str, str], data: bytes) -> web.StreamResponse:
        """Headers at once with the full Content-Length, then the body one byte a second:
        only a timeout that covers the body read ends it early."""
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_length = len(data)
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(len(data)):
                transport = request.transport
                if transport is None or transport.is_closing() or (self._closing is not None and self._closing.is_set()):
                    return self._drop(request)
                await resp.write(data[i : i + 1])
                await self._sleep(SLOW_BODY_PERIOD)
        return resp

    def _key_ok(self, request: web.Request, provider: Provider, path_key: str | None, fault: FaultSpec | None) -> bool:
        auth = provider.auth
        if auth.type is AuthType.NONE:
            return True
        if auth.type is AuthType.QUERY:
            key = request.query.get(auth.name, "")
        elif auth.type is AuthType.HEADER:
            key = request.headers.get(auth.name, "")
            if auth.prefix and key.lower().startswith(auth.prefix.lower()):
                key = key[len(auth.prefix) :]
        else:
            key = path_key or ""
        key = key.strip()
        if not key or key == "{key}":
            return auth.optional
        return not (fault and fault.key_is_invalid(key))

    async def _sleep(self, seconds: float) -> None:
        if self._closing is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):  # the usual end: the time ran out, not a stop
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _hang(self, request: web.Request) -> None:
        """Answer nothing until the client gives up, the simulator stops or max_hang."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_hang
        while loop.time() < deadline and not (self._closing and self._closing.is_set()):
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await self._sleep(min(0.2, deadline - loop.time()))

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort() if hasattr(transport, "abort") else transport.close()
        raise asyncio.CancelledError  # nothing can be written to an aborted connection


def _json(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _bad_request(field_name: str, message: str) -> web.Response:
    return web.json_response({"error": f"{field_name}: {message}", "field": field_name}, status=400)


def _take(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The first `size` bytes of a stream of chunks."""
    for chunk in chunks:
        if size <= 0:
            return
        yield chunk[:size]
        size -= len(chunk)
