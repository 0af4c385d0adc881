"""Simulated chains for `chain_head` endpoints: heads that advance at each chain's block
time on the simulator's clock, answered in each protocol's own shapes, with per-node
faults set over the control API (`POST /control/chains`).

Faults, per (provider, endpoint): `lag_blocks` (behind the chain by N), `stuck` (the
head freezes where it is), `wrong_chain` (another chain id), `syncing` (eth_syncing
answers an object, Solana's getHealth -32005), `ahead_blocks` (a rogue node far ahead).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..chains import ChainProtocol, ChainSpec
from ..config import Config

log = structlog.get_logger()

# Where each simulated chain stands at EPOCH (a made-up, plausible height; what matters
# is that every node of a chain counts from the same point).
EPOCH = 1_700_000_000.0
START_BLOCK = {ChainProtocol.EVM: 18_000_000, ChainProtocol.SOLANA: 250_000_000, ChainProtocol.ESPLORA: 800_000}
OTHER_EVM_CHAIN = 56  # the id a wrong-chain EVM node reports (BNB Chain), or 1 on BNB Chain itself
OTHER_GENESIS = "4sGjMW1sUnHzSxGspuhpqLDx6wiyjNtZAMdL4VZHirAn"  # Solana testnet's genesis hash
OTHER_BITCOIN_GENESIS = "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"  # testnet3


@dataclass(frozen=True, slots=True)
class NodeFault:
    lag_blocks: int = 0
    stuck: bool = False
    wrong_chain: bool = False
    syncing: bool = False
    ahead_blocks: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeFault:
        """Raises ValueError naming the field."""
        out: dict[str, Any] = {}
        for name in ("lag_blocks", "ahead_blocks"):
            value = data.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**9:
                raise ValueError(f"{name}: a whole number of blocks from 0 to 1e9")
            out[name] = value
        for name in ("stuck", "wrong_chain", "syncing"):
            value = data.get(name, False)
            if not isinstance(value, bool):
                raise ValueError(f"{name}: true or false")
            out[name] = value
        return cls(**out)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("lag_blocks", "stuck", "wrong_chain", "syncing", "ahead_blocks")}


@dataclass
class _Node:
    fault: NodeFault = field(default_factory=NodeFault)
    frozen_at: int | None = None  # the head a stuck node keeps


def _genesis_of(spec: ChainSpec) -> str:
    return spec.id


class ChainSim:
    """The chains of a config and the faults of their nodes."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._specs: dict[tuple[str, str], ChainSpec] = {}
        self._nodes: dict[tuple[str, str], _Node] = {}

    def update(self, config: Config) -> None:
        self._specs = {(p.name, ep.name): ep.chain for p in config.providers for ep in p.endpoints if ep.chain is not None}

    def knows(self, provider: str, endpoint: str) -> bool:
        return (provider, endpoint) in self._specs

    def chain_head(self, spec: ChainSpec, now: float) -> int:
        """The chain's true head now."""
        return START_BLOCK[spec.protocol] + max(0, math.floor((now - EPOCH) / spec.block_time))

    def block_time_of(self, spec: ChainSpec, block: int) -> int:
        return int(EPOCH + (block - START_BLOCK[spec.protocol]) * spec.block_time)

    def set_fault(self, provider: str, endpoint: str, fault: NodeFault) -> None:
        node = self._nodes.setdefault((provider, endpoint), _Node())
        spec = self._specs[(provider, endpoint)]
        node.frozen_at = self.head(provider, endpoint, spec) if fault.stuck else None
        node.fault = fault

    def clear(self, provider: str | None = None) -> int:
        keys = [k for k in self._nodes if provider is None or k[0] == provider]
        for k in keys:
            del self._nodes[k]
        return len(keys)

    def faults(self) -> list[dict[str, Any]]:
        return [{"provider": p, "endpoint": e, **n.fault.to_json()} for (p, e), n in sorted(self._nodes.items())]

    def head(self, provider: str, endpoint: str, spec: ChainSpec) -> int:
        node = self._nodes.get((provider, endpoint))
        if node is not None and node.frozen_at is not None:
            return node.frozen_at
        head = self.chain_head(spec, self._clock())
        if node is not None:
            head = max(0, head - node.fault.lag_blocks) + node.fault.ahead_blocks
        return head

    def _fault(self, provider: str, endpoint: str) -> NodeFault:
        node = self._nodes.get((provider, endpoint))
        return node.fault if node is not None else NodeFault()

    def answer(self, provider: str, endpoint: str, method: str, sub_path: str, body: Any) -> tuple[int, Any]:
        """(status, JSON body or text) for one request to a chain node."""
        spec = self._specs[(provider, endpoint)]
        fault = self._fault(provider, endpoint)
        head = self.head(provider, endpoint, spec)
        if spec.protocol is ChainProtocol.ESPLORA:
            return self._esplora(spec, fault, head, method, sub_path)
        calls = body if isinstance(body, list) else [body]
        replies = [self._rpc(spec, fault, head, call) for call in calls]
        return 200, replies if isinstance(body, list) else replies[0]

    def _rpc(self, spec: ChainSpec, fault: NodeFault, head: int, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        rid, method, params = call.get("id"), call["method"], call.get("params") or []

        def ok(result: Any) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": rid, "result": result}

        if spec.protocol is ChainProtocol.EVM:
            if method == "eth_chainId":
                own = int(spec.id)
                return ok(hex(OTHER_EVM_CHAIN if fault.wrong_chain and own != OTHER_EVM_CHAIN else 1 if fault.wrong_chain else own))
            if method == "eth_blockNumber":
                return ok(hex(head))
            if method == "eth_getBlockByNumber":
                return ok({"number": hex(head), "timestamp": hex(self.block_time_of(spec, head)), "hash": "0x" + f"{head:064x}", "transactions": []})
            if method == "eth_syncing":
                # geth's shape while syncing (startingBlock, currentBlock, highestBlock).
                return ok({"startingBlock": hex(max(head - 1000, 0)), "currentBlock": hex(head), "highestBlock": hex(head + 1000)} if fault.syncing else False)
        else:
            if method == "getGenesisHash":
                return ok(OTHER_GENESIS if fault.wrong_chain else _genesis_of(spec))
            if method == "getSlot":
                return ok(head)
            if method == "getHealth":
                if fault.syncing:
                    # Solana's answer of a node that is behind (docs: getHealth).
                    return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32005, "message": "Node is behind by 150 slots", "data": {"numSlotsBehind": 150}}}
                return ok("ok")
            if method == "getBlockTime":
                slot = params[0] if params and isinstance(params[0], int) else head
                return ok(self.block_time_of(spec, slot))
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}}

    def _esplora(self, spec: ChainSpec, fault: NodeFault, head: int, method: str, sub_path: str) -> tuple[int, Any]:
        if method != "GET":
            return 405, "Method Not Allowed"
        if sub_path == "/blocks/tip/height":
            return 200, str(head)
        if sub_path == "/blocks":
            return 200, [
                {"id": f"{h:064x}", "height": h, "version": 536870912, "timestamp": self.block_time_of(spec, h), "tx_count": 3000, "size": 1_500_000}
                for h in range(head, max(head - 10, -1), -1)
            ]
        if sub_path == "/block-height/0":
            return 200, OTHER_BITCOIN_GENESIS if fault.wrong_chain else spec.id
        return 404, "Block not found"


# ---------------------------------------------------------------- the demo's chain chaos

CHAIN_CHAOS_PERIOD = 60.0  # seconds a round of node faults lives: a probe every interval meets it


def chain_scenarios(spec: ChainSpec) -> tuple[tuple[str, NodeFault], ...]:
    # Three times the allowed lag: stale on every chain whatever its block time.
    return (
        ("lag", NodeFault(lag_blocks=max(20, 3 * spec.max_lag_blocks))),
        ("stuck", NodeFault(stuck=True)),
        ("wrong_chain", NodeFault(wrong_chain=True)),
        ("syncing", NodeFault(syncing=True)),
        ("rogue", NodeFault(ahead_blocks=30_000_000)),
    )


def plan_chain_round(config: Config, round_no: int) -> list[tuple[str, str, str, NodeFault]]:
    """(scenario, provider, endpoint, fault): every scenario once, each on another chain and
    node, rotating with the round so every node meets every fault in turn."""
    chains: dict[str, list[tuple[str, str, ChainSpec]]] = {}
    for p in config.providers:
        for ep in p.endpoints:
            if ep.chain is not None:
                chains.setdefault(ep.chain.name, []).append((p.name, ep.name, ep.chain))
    names = sorted(chains)
    out: list[tuple[str, str, str, NodeFault]] = []
    if not names:
        return out
    for i in range(len(chain_scenarios(chains[names[0]][0][2]))):
        nodes = chains[names[(round_no + i) % len(names)]]
        provider, endpoint, spec = nodes[(round_no + i) % len(nodes)]
        if any(o[1:3] == (provider, endpoint) for o in out):
            continue
        name, fault = chain_scenarios(spec)[i]
        out.append((name, provider, endpoint, fault))
    return out


async def run_chain_chaos(sim: Any, config: Config, period: float = CHAIN_CHAOS_PERIOD) -> None:
    """Every `period` seconds replace the node faults with the next round's; the first
    round injects every scenario at once. Runs until cancelled, then clears its faults."""
    round_no = 0
    try:
        while True:
            try:
                sim.chains.clear()
                planned = plan_chain_round(config, round_no)
                for _name, provider, endpoint, fault in planned:
                    sim.set_chain_fault(provider, endpoint, fault)
                log.info("chain_chaos_round", round=round_no, injected=[f"{n}:{p}/{e}" for n, p, e, _ in planned])
            except Exception:
                log.exception("chain_chaos_round_failed", round=round_no)
            round_no += 1
            await asyncio.sleep(period)
    except asyncio.CancelledError:
        sim.chains.clear()
        raise
