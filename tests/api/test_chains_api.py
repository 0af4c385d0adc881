"""GET /api/chains against the simulator: reference head, lag and status per endpoint,
and the best endpoint by penalty (docs/chains.md)."""

from __future__ import annotations

from typing import Any

from .conftest import ApiHarness

ETH = ("publicnode", "llamarpc", "drpc", "infura", "alchemy", "ankr")


async def node_fault(api: ApiHarness, provider: str, endpoint: str, **fault: Any) -> None:
    async with api.http.post(f"{api.sim.url}/control/chains", json={"provider": provider, "endpoint": endpoint, **fault}) as resp:
        assert resp.status == 201, await resp.text()


async def test_chains_show_reference_lag_status_and_best(api: ApiHarness) -> None:
    await node_fault(api, "drpc", "head_ethereum", lag_blocks=50)
    await node_fault(api, "ankr", "head_ethereum", wrong_chain=True)
    for p in ETH:
        await api.probe(p, "head_ethereum")
    rows = {r["chain"]: r for r in await api.get("/api/chains")}
    assert set(rows) == {"ethereum", "bsc", "polygon", "arbitrum", "base", "optimism", "solana", "bitcoin"}
    eth = rows["ethereum"]
    assert (eth["protocol"], eth["id"], eth["block_time_seconds"]) == ("evm", "1", 12.0)
    assert eth["reporters"] == 5 and eth["agreeing"] == 4  # ankr is on another chain; drpc lags
    by = {(e["provider"], e["endpoint"]): e for e in eth["endpoints"]}
    assert by[("drpc", "head_ethereum")]["lag_blocks"] == 50 and by[("drpc", "head_ethereum")]["status"] == "lagging"
    assert by[("ankr", "head_ethereum")]["status"] == "wrong_chain" and by[("ankr", "head_ethereum")]["penalty"] is None
    assert by[("ankr", "head_ethereum")]["chain_id_mismatch"] is True and by[("ankr", "head_ethereum")]["lag_blocks"] is None
    assert by[("publicnode", "head_ethereum")]["lag_blocks"] == 0 and by[("publicnode", "head_ethereum")]["status"] == "ok"
    assert eth["reference_head"] == by[("publicnode", "head_ethereum")]["head"]
    # drpc's 50 blocks cost 100 points: never the best; the best is one of the nodes at the reference.
    assert eth["best"] is not None and eth["best"] not in ("drpc/head_ethereum", "ankr/head_ethereum")
    best = by[tuple(eth["best"].split("/"))]  # type: ignore[index]
    assert best["penalty"] == min(e["penalty"] for e in eth["endpoints"] if e["penalty"] is not None)
    assert rows["bitcoin"]["reference_head"] is None and rows["bitcoin"]["best"] is None
    assert all(e["status"] == "unknown" for e in rows["bitcoin"]["endpoints"])


async def test_chain_filter(api: ApiHarness) -> None:
    assert [r["chain"] for r in await api.get("/api/chains?chain=solana")] == ["solana"]
    await api.get("/api/chains?chain=dogecoin", status=404)
    await api.get("/api/chains?chain=Bad-Name", status=404)  # as ?provider= does: a name not configured
