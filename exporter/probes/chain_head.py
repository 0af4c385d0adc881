"""The `chain_head` probe kind: ask an RPC node for its head, the head block's time, its
chain id and whether it is syncing; record that in the chain's consensus
(`exporter/chains.py`) and end the probe by where the node stands in it.

- wrong chain id: `bad_payload` (`up` 0, `crypto_api_chain_id_mismatch` 1); the node is
  kept out of the consensus;
- syncing, lagging beyond `max_lag_blocks` / `max_lag`, or a head that has not moved for
  `max_stillness`: `stale`;
- otherwise `success` (a node ahead of the reference is shown as `ahead` in
  /api/chains but not failed: with few nodes the reference itself may be the laggard).

Protocols and their sources:
- EVM JSON-RPC (https://ethereum.org/en/developers/docs/apis/json-rpc/, EIP-1474): one
  batch of eth_chainId, eth_getBlockByNumber("latest", false) (number and timestamp in
  one answer) and eth_syncing; a node that refuses batches is asked one call at a time.
- Solana JSON-RPC (https://solana.com/docs/rpc/http): getGenesisHash (the cluster's
  identity), getSlot, getHealth (error -32005 "Node is unhealthy/behind": syncing by its
  own account), then getBlockTime of that slot (null, or an error for a skipped slot,
  leaves the time unknown).
- Esplora REST (https://github.com/Blockstream/esplora/blob/master/API.md, served by
  mempool.space and Blockstream): `GET /blocks` (the newest blocks, the tip first, with
  height and timestamp) and `GET /block-height/0` (the genesis block hash: the chain id).

One attempt per request, no retry: the next round comes within the interval, and a
retried head would arrive late anyway. Budget, breaker and keys work as in `http`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .. import safejson
from ..chains import ChainProtocol, ChainSpec, Head, HeadStatus, View, hex_quantity
from ..classify import classify_status, short
from ..config import ApiKey, Endpoint, Provider
from ..model import KeyCheck, Outcome, ProbeResult
from ..ratelimit import BudgetWindow
from .context import ProbeContext, ProbeSpec, probe_result
from .http import _client_timeout, _read_capped
from .request import USER_AGENT, build_request, env_proxy

# JSON-RPC error codes that mean "slow down": EIP-1474's limit exceeded, and the 429
# Alchemy and others put in the body.
_RPC_RATE_LIMITED = frozenset({-32005, 429})
_SOLANA_UNHEALTHY = -32005  # getHealth: "Node is unhealthy" / "Node is behind by N slots"


class _Failed(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Report:
    """What one node said about itself."""

    block: int
    timestamp: float | None
    chain_id: str
    syncing: bool


class _Client:
    """The probe's requests to one node: each bounded by the endpoint's timeout and body
    limit, each spending the budget, every status code kept; a failure raises _Failed."""

    def __init__(self, ctx: ProbeContext, provider: Provider, endpoint: Endpoint, key: ApiKey | None, budget: BudgetWindow | None) -> None:
        self.ctx, self.provider, self.endpoint, self.key, self.budget = ctx, provider, endpoint, key, budget
        self.base = endpoint.url if endpoint.url else provider.base_url + endpoint.path
        self.codes: list[int] = []
        self.duration = 0.0  # seconds, summed over the requests: the head costs all of them
        self.requests = 0

    async def call(self, method: str, suffix: str = "", body: Any = None) -> bytes:
        if self.budget is not None and not self.budget.take(self.ctx.wall()):
            raise _Failed(Outcome.BUDGET_EXHAUSTED, "client-side budget used up for this window")
        url, params, headers = build_request(self.provider, self.endpoint, self.key, self.base + suffix)
        headers = {**headers, "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        session = self.ctx.fresh_session if self.endpoint.fresh_connection and self.ctx.fresh_session else self.ctx.session
        self.requests += 1
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                url,
                params=params or None,
                headers=headers,
                data=data,
                timeout=_client_timeout(self.endpoint.timeout),
                allow_redirects=False,  # a redirect is not followed: see http.py for why
                proxy=env_proxy(self.provider.base_url),
            ) as resp:
                status = resp.status
                raw = await _read_capped(resp, self.endpoint.max_body_bytes)
        except TimeoutError:
            raise _Failed(Outcome.TIMEOUT, f"no complete answer within {self.endpoint.timeout:g}s") from None
        except aiohttp.ClientPayloadError as e:
            raise _Failed(Outcome.CONNECTION_ERROR, f"body cut off ({type(e).__name__})") from None
        except (aiohttp.ClientError, OSError) as e:
            # Exception text can hold the URL, and the URL a key: the type only.
            raise _Failed(Outcome.CONNECTION_ERROR, short(type(e).__name__)) from None
        finally:
            self.duration += time.perf_counter() - started
        self.codes.append(status)
        decided = classify_status(status, self.endpoint)
        if decided is not None:
            raise _Failed(decided, f"HTTP {status}")
        if raw is None:
            raise _Failed(Outcome.BAD_PAYLOAD, f"body larger than {self.endpoint.max_body_bytes} bytes")
        return raw

    async def json(self, method: str, suffix: str = "", body: Any = None) -> Any:
        raw = await self.call(method, suffix, body)
        try:
            return safejson.loads(raw)
        except safejson.JsonError as e:
            raise _Failed(Outcome.BAD_PAYLOAD, f"malformed JSON ({e})") from None

    async def text(self, suffix: str) -> str:
        raw = await self.call("GET", suffix)
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _Failed(Outcome.BAD_PAYLOAD, f"GET {suffix}: not a plain-text answer") from None

    async def rpc(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """JSON-RPC calls as one batch; one at a time when the node does not answer the
        batch with a list (some public nodes refuse batches). Results in call order; an
        error object raises."""
        batch = [{"jsonrpc": "2.0", "id": i + 1, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        answer = await self.json("POST", body=batch)
        if isinstance(answer, list):
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
            replies = [by_id.get(i + 1) for i in range(len(calls))]
        else:
            error = answer.get("error") if isinstance(answer, dict) else None
            if isinstance(error, dict) and error.get("code") in _RPC_RATE_LIMITED:
                raise _rpc_failure(_RpcError("batch", error.get("code"), short(str(error.get("message", "")))))
            # No batches here: every call on its own.
            replies = [r if isinstance(r, dict) else None for r in [await self.json("POST", body=one) for one in batch]]
        return [_result(name, reply) for (name, _), reply in zip(calls, replies, strict=True)]


class _RpcError(Exception):
    def __init__(self, method: str, code: Any, message: str) -> None:
        super().__init__(message)
        self.method, self.code, self.message = method, code, message


def _result(method: str, reply: dict[str, Any] | None) -> Any:
    if reply is None:
        raise _Failed(Outcome.BAD_PAYLOAD, f"{method}: no answer in the batch")
    error = reply.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        message = short(str(error.get("message", "")) if isinstance(error, dict) else str(error))
        raise _RpcError(method, code, message)
    if "result" not in reply:
        raise _Failed(Outcome.BAD_PAYLOAD, f"{method}: neither result nor error")
    return reply["result"]


def _rpc_failure(e: _RpcError) -> _Failed:
    outcome = Outcome.RATE_LIMITED if e.code in _RPC_RATE_LIMITED else Outcome.BAD_PAYLOAD
    return _Failed(outcome, f"{e.method}: error {e.code}: {e.message}")


async def _evm(client: _Client, chain: ChainSpec) -> Report:
    try:
        chain_id, block, syncing = await client.rpc([("eth_chainId", []), ("eth_getBlockByNumber", ["latest", False]), ("eth_syncing", [])])
    except _RpcError as e:
        raise _rpc_failure(e) from None
    number = hex_quantity(chain_id)
    if number is None:
        raise _Failed(Outcome.BAD_PAYLOAD, f"eth_chainId: not a hex quantity ({short(str(chain_id))})")
    if not isinstance(block, dict) or (height := hex_quantity(block.get("number"))) is None:
        raise _Failed(Outcome.BAD_PAYLOAD, "eth_getBlockByNumber: no block number in the answer")
    stamp = hex_quantity(block.get("timestamp"))
    # eth_syncing: false, or an object with startingBlock/currentBlock/highestBlock.
    return Report(height, float(stamp) if stamp is not None else None, str(number), syncing is not False and syncing is not None)


async def _solana(client: _Client, chain: ChainSpec) -> Report:
    try:
        genesis, slot = await client.rpc([("getGenesisHash", []), ("getSlot", [])])
    except _RpcError as e:
        raise _rpc_failure(e) from None
    if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
        raise _Failed(Outcome.BAD_PAYLOAD, f"getSlot: not a slot number ({short(str(slot))})")
    syncing = False
    try:
        await client.rpc([("getHealth", [])])
    except _RpcError as e:
        if e.code != _SOLANA_UNHEALTHY:
            raise _rpc_failure(e) from None
        syncing = True  # the node says it is behind: its own "I am catching up"
    stamp: float | None = None
    try:
        (block_time,) = await client.rpc([("getBlockTime", [slot])])
    except _RpcError:
        block_time = None  # a skipped or not yet available slot: the head stands, its time is unknown
    if isinstance(block_time, int) and not isinstance(block_time, bool):
        stamp = float(block_time)
    return Report(slot, stamp, str(genesis), syncing)


async def _esplora(client: _Client, chain: ChainSpec) -> Report:
    blocks = await client.json("GET", "/blocks")
    tip = blocks[0] if isinstance(blocks, list) and blocks else None
    height = tip.get("height") if isinstance(tip, dict) else None
    if not isinstance(height, int) or isinstance(height, bool) or height < 0:
        raise _Failed(Outcome.BAD_PAYLOAD, "GET /blocks: no height in the first block")
    stamp = tip.get("timestamp") if isinstance(tip, dict) else None
    genesis = await client.text("/block-height/0")
    ts = float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
    return Report(height, ts, genesis.lower(), False)


ASK = {ChainProtocol.EVM: _evm, ChainProtocol.SOLANA: _solana, ChainProtocol.ESPLORA: _esplora}

_STALE = {
    HeadStatus.LAGGING: "behind the reference head",
    HeadStatus.STUCK: "head has not moved",
    HeadStatus.SYNCING: "the node says it is syncing",
}


async def probe(ctx: ProbeContext, spec: ProbeSpec) -> ProbeResult:
    """Ask the node, record its head, judge it against the chain; never raises."""
    provider, endpoint, runtime = spec.provider, spec.endpoint, spec.runtime
    started_wall, started_mono = ctx.wall(), ctx.monotonic()

    def finish(outcome: Outcome, detail: str, **kw: Any) -> ProbeResult:
        return probe_result(ctx, spec, started_wall, outcome, detail, **kw)

    chain = endpoint.chain
    if chain is None:  # config.py refuses this; a hand-built Endpoint might not
        return finish(Outcome.BAD_PAYLOAD, "a chain_head endpoint needs a chain")
    if not runtime.breaker.allow(started_mono):
        return finish(Outcome.CIRCUIT_OPEN, "circuit breaker open: provider failing, probe skipped")
    key = runtime.keys.current(started_mono)
    client = _Client(ctx, provider, endpoint, key, runtime.budget)
    view = None
    try:
        report = await ASK[chain.protocol](client, chain)
    except _Failed as e:
        outcome, detail = e.outcome, e.detail
    else:
        right = report.chain_id == chain.id
        head = Head(report.block, report.timestamp, ctx.wall(), right_chain=right, syncing=report.syncing)
        view = ctx.chains.record(provider.name, endpoint.name, head)
        outcome, detail = _verdict(report, chain, view)
    if client.requests == 0 and outcome is Outcome.BUDGET_EXHAUSTED:
        return finish(outcome, detail)
    runtime.breaker.record(outcome, ctx.monotonic())
    checks: tuple[KeyCheck, ...] = ()
    if key is not None and outcome is Outcome.AUTH_ERROR:
        runtime.keys.reject(key, ctx.monotonic())
        checks = (KeyCheck(key.env, False),)
    elif key is not None and client.codes and client.codes[-1] < 300:
        runtime.keys.accept(key)
        checks = (KeyCheck(key.env, True),)
    return finish(
        outcome,
        detail,
        duration=client.duration if client.codes else None,
        status_code=client.codes[-1] if client.codes else None,
        attempts=1,
        http_codes=tuple(client.codes),
        data_timestamp=view.head.timestamp if view is not None and view.head is not None else None,
        key_env=key.env if key else None,
        key_checks=checks,
        slow=client.duration > endpoint.slow_threshold,
    )


def _verdict(report: Report, chain: ChainSpec, view: View | None) -> tuple[Outcome, str]:
    if report.chain_id != chain.id:
        return Outcome.BAD_PAYLOAD, f"wrong chain: the node reports chain id {short(report.chain_id)}, {chain.name} is {chain.id}"
    if view is None:
        return Outcome.SUCCESS, ""  # removed by a reload while in flight
    reason = _STALE.get(view.status)
    if reason is None:
        return Outcome.SUCCESS, ""
    if view.status is HeadStatus.LAGGING and view.lag is not None:
        seconds = f", {view.lag.seconds:g}s" if view.lag.seconds is not None else ""
        reason = f"{reason} by {view.lag.blocks} blocks{seconds} (allowed {chain.max_lag_blocks} blocks, {chain.max_lag:g}s)"
    elif view.status is HeadStatus.STUCK:
        reason = f"{reason} for {view.still_for:g}s (allowed {chain.max_stillness:g}s)"
    return Outcome.STALE, f"head {report.block}: {reason}"
