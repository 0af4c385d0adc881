"""The standalone service's facts from Prometheus's HTTP API (`/api/v1/query`, instant
vectors: `{"status": "success", "data": {"resultType": "vector", "result": [{"metric",
"value": [t, "v"]}]}}`), and the fallback from an exporter that does not answer.

A loopback server answers the PromQL the service sends with canned vectors, keyed by
the metric each query reads; the real Prometheus path is the stack tests'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.incidents.causes import Cause
from exporter.incidents.explain import explain
from exporter.incidents.facts import ExporterApiFacts, FirstOf, PrometheusFacts
from exporter.incidents.records import Incident, IncidentStatus, Severity

P = {"provider": "binance"}
VECTORS: dict[str, list[tuple[dict[str, str], float]]] = {
    "crypto_api_probes_total": [({**P, "endpoint": "ping", "outcome": "server_error"}, 8.0), ({**P, "endpoint": "ping", "outcome": "success"}, 2.0)],
    "crypto_api_http_responses_total": [({**P, "endpoint": "ping", "code": "503"}, 8.0), ({**P, "endpoint": "ping", "code": "200"}, 2.0)],
    'crypto_api_probe_duration_seconds_bucket{provider=~"binance"}[5m]': [({**P, "endpoint": "ping"}, 0.05)],
    'crypto_api_probe_duration_seconds_bucket{provider=~"binance"}[1d]': [({**P, "endpoint": "ping"}, 0.04)],
    "crypto_api_provider_status": [({**P, "category": "exchanges", "status": "offline"}, 1.0)],
    "crypto_api_circuit_breaker_state": [({**P, "state": "open"}, 1.0)],
    "crypto_api_key_valid": [],
    "crypto_api_provider_maintenance": [(P, 0.0)],
    "crypto_api_rate_limit_remaining": [({**P, "scope": "weight_1m"}, 12.5)],
    "crypto_api_chain_head_lag_blocks": [],
}


@pytest.fixture
async def prometheus() -> AsyncIterator[tuple[str, list[str]]]:
    queries: list[str] = []

    async def query(request: web.Request) -> web.Response:
        promql = request.query["query"]
        queries.append(promql)
        key = next((k for k in sorted(VECTORS, key=len, reverse=True) if k in promql), None)
        assert key is not None, promql
        result = [{"metric": m, "value": [1.7e9, str(v)]} for m, v in VECTORS[key]]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", queries  # type: ignore[union-attr]
    await runner.cleanup()


BASE = Incident(
    1,
    "g",
    IncidentStatus.OPEN,
    Severity.CRITICAL,
    "ProviderDown: binance",
    "incidents",
    "",
    0.0,
    0.0,
    None,
    1,
    ("binance",),
    (),
    ("exchanges",),
    (),
    ("ProviderDown",),
    1,
    1,
)


def incident(**kw: Any) -> Incident:
    return replace(BASE, **kw)


async def test_facts_from_prometheus_explain_an_outage(prometheus: tuple[str, list[str]]) -> None:
    url, queries = prometheus
    async with aiohttp.ClientSession() as session:
        # The exporter does not answer (nothing listens on port 9 of loopback): Prometheus does.
        facts = await FirstOf([ExporterApiFacts(session, "http://127.0.0.1:9"), PrometheusFacts(session, url)]).gather(["binance"])
    assert facts.source == "prometheus" and facts.warnings and "http://127.0.0.1:9/api/providers" in facts.warnings[0]
    (p,) = facts.providers
    assert (p.status, p.category, p.circuit_state, p.maintenance) == ("offline", "exchanges", "open", False)
    (ep,) = p.endpoints
    assert (ep.endpoint, ep.recent, ep.codes, ep.last_outcome) == ("ping", {"server_error": 8, "success": 2}, {503: 8, 200: 2}, "server_error")
    assert (round(ep.latency_ms or 0), round(ep.baseline_ms or 0)) == (50, 40)
    assert p.quotas[0].scope == "weight_1m" and p.quotas[0].percentage == 12.5
    assert all('provider=~"binance"' in q for q in queries)
    e = explain(incident(), (), facts, 0.0)
    assert e.cause is Cause.OUTAGE and "HTTP 503" in e.title and "binance: circuit breaker open" in e.facts


async def test_no_source_answers() -> None:
    async with aiohttp.ClientSession() as session:
        facts = await FirstOf([PrometheusFacts(session, "http://127.0.0.1:9")]).gather(["binance"])
    assert facts.source == "none" and facts.providers == ()
    e = explain(incident(alertnames=("ApiKeysRejected",)), (), facts, 0.0)
    assert e.cause is Cause.KEY_REJECTED and "no facts about the affected providers could be read" in e.summary
