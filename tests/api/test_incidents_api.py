"""Issue 16, points 1 and 2, through the exporter's JSON API and the real simulator: the
webhook route and /api/incidents; the explanation names the right cause offline for a
503 outage, a rate-limit body, a stale node and a rejected key; the LLM path runs once
per incident with no secret in its prompt, and fails open; the Slack follow-up never raises."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.incidents.causes import Cause
from exporter.incidents.explain import ALERT_CAUSE
from exporter.incidents.facts import ExporterApiFacts, NoFacts
from exporter.incidents.llm import LlmSettings
from exporter.incidents.records import Action, EventKind
from exporter.incidents.service import IncidentService, IncidentSettings
from exporter.web.api.incidents import ApiFacts, build_incident_app
from exporter.web.api.models import IncidentCause
from exporter.web.api.settings import ApiSettings
from exporter.web.server import serve
from tests.incident_payloads import notification, provider_alert, resolved, storm

from .conftest import ApiHarness, StartApi
from .test_chains_api import ETH, node_fault

GUARD = 10.0  # seconds: only so that a broken path fails the test instead of hanging it
WEBHOOK = "/api/incidents/webhook"


# ---------------------------------------------------------------- local stand-ins for the LLM and Slack


class Stub:
    """An OpenAI-compatible /v1/chat/completions, or a Slack webhook, on loopback."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode  # ok, hang, fail, garbage
        self.bodies: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._never = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.text())
        if self.mode == "hang":
            await self._never.wait()
        if self.mode == "fail":
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        if self.mode == "garbage":
            return web.Response(text="not json")
        if request.path.endswith("/chat/completions"):
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "test",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "LLM: binance is returning 503s; wait for them."}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
            )
        return web.Response(text="ok")

    async def start(self) -> Stub:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._never.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def stubs() -> AsyncIterator[Callable[[str], Awaitable[Stub]]]:
    started: list[Stub] = []

    async def make(mode: str = "ok") -> Stub:
        stub = await Stub(mode).start()
        started.append(stub)
        return stub

    yield make
    for stub in started:
        await stub.stop()


class Gate:
    """The service's settle wait, released by the test (no real sleep)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.open.wait()


async def service_for(api: ApiHarness, settings: IncidentSettings, **kw: Any) -> IncidentService:
    service = IncidentService(settings, ApiFacts(api.exporter.state, api.exporter, time.time), secrets=api.exporter.config.secrets, **kw)
    await service.start()
    return service


async def explained(service: IncidentService, body: dict[str, Any]) -> dict[str, Any]:
    result = await service.receive(body)
    assert result.incident_id is not None
    async with asyncio.timeout(GUARD):
        await service.idle()
    detail = await service.get(result.incident_id)
    assert detail is not None and detail.incident.explanation is not None
    return {**detail.incident.explanation, "timeline": [e.kind for e in detail.timeline]}


# ---------------------------------------------------------------- the routes


async def test_webhook_groups_and_the_api_lists_and_shows(start_api: StartApi) -> None:
    api = await start_api(incidents=IncidentSettings(settle_seconds=0))
    await api.fault(provider="binance", status=503)
    await api.probe_all("binance")
    down = provider_alert("ProviderDown", "binance")
    body = notification([down])
    assert await api.post(WEBHOOK, json=body) == {"status": "ok", "action": "opened", "incident": 1}
    assert (await api.post(WEBHOOK, json=body))["action"] == "repeated"
    await api.post(WEBHOOK, json=storm(50))
    page = await api.get("/api/incidents")
    assert (page["total"], [i["id"] for i in page["incidents"]]) == (2, [2, 1])
    assert page["incidents"][0]["alerts_total"] == 50 and page["incidents"][1]["notifications"] == 2

    assert (await api.post(WEBHOOK, json=notification([resolved(down, time.time())])))["action"] == "resolved"
    assert [i["id"] for i in (await api.get("/api/incidents?status=open"))["incidents"]] == [2]
    assert [i["id"] for i in (await api.get("/api/incidents?status=resolved&provider=binance&severity=critical&since=1h"))["incidents"]] == [1]
    assert (await api.get("/api/incidents?provider=okx"))["total"] == 0
    assert [i["id"] for i in (await api.get("/api/incidents?per_page=1&page=2"))["incidents"]] == [1]

    for _ in range(100):  # the explanation runs as a task of the exporter's own service
        one = await api.get("/api/incidents/1")
        if one["explanation"] is not None:
            break
        await asyncio.sleep(0.02)
    assert one["status"] == "resolved" and one["providers"] == ["binance"] and one["alerts"][0]["alertname"] == "ProviderDown"
    assert one["timeline"][0]["kind"] == "opened" and "resolved" in [e["kind"] for e in one["timeline"]]
    assert one["explanation"]["cause"] == "outage" and one["cause"] == "outage" and one["summary"].startswith("Provider outage")
    assert one["explanation"]["facts_source"] == "exporter"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/api/incidents/999", 404, "id"),
        ("/api/incidents/0", 400, "id"),
        ("/api/incidents/abc", 404, None),  # not a route: ids are digits
        ("/api/incidents/1234567890123", 400, "id"),
        ("/api/incidents?status=closed", 400, "status"),
        ("/api/incidents?since=yesterday", 400, "since"),
        ("/api/incidents?per_page=201", 400, "per_page"),
    ],
)
async def test_bad_requests_name_the_parameter(api: ApiHarness, path: str, status: int, field: str | None) -> None:
    body = await api.get(path, status=status)
    assert body["field"] == field


async def test_bad_webhook_bodies(api: ApiHarness) -> None:
    body = notification([provider_alert("ProviderDown", "binance")])
    body["alerts"][0]["labels"] = "binance"
    answer = await api.post(WEBHOOK, status=400, json=body)
    assert answer["field"] == "alerts" and "alerts[0].labels: must be an object of strings" in answer["detail"]
    assert (await api.post(WEBHOOK, status=400, json={"version": "5"}))["field"] == "version"
    huge = b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    assert (await api.post(WEBHOOK, status=413, data=huge, headers={"Content-Type": "application/json"}))["field"] == "body"


# ---------------------------------------------------------------- the explanation, offline


async def test_503_outage(api: ApiHarness) -> None:
    await api.fault(provider="binance", status=503)
    await api.probe_all("binance")
    service = await service_for(api, IncidentSettings(settle_seconds=0))
    e = await explained(service, notification([provider_alert("ProviderDown", "binance")]))
    await service.stop()
    assert e["cause"] == Cause.OUTAGE and "HTTP 503" in e["title"] and e["facts_source"] == "exporter"
    assert any("server_error" in f and "HTTP 503" in f for f in e["facts"])
    assert e["timeline"] == [EventKind.OPENED, EventKind.EXPLAINED]


async def test_rate_limit_body(api: ApiHarness) -> None:
    """Etherscan's HTTP 200 with {"status": "0", "result": "Max rate limit reached"}: a rate limit, not an outage."""
    await api.fault(provider="etherscan", endpoint="gas_oracle", body_error="rate_limit")
    await api.probe("etherscan", "gas_oracle")
    service = await service_for(api, IncidentSettings(settle_seconds=0))
    e = await explained(service, notification([provider_alert("EndpointDown", "etherscan", category="explorers", severity="warning", endpoint="gas_oracle")]))
    await service.stop()
    assert e["cause"] == Cause.RATE_LIMITED
    assert e["facts"][0].startswith("HTTP 200 answers that carry a rate-limit error in the body: etherscan/gas_oracle")


async def test_stale_node(api: ApiHarness) -> None:
    await node_fault(api, "drpc", "head_ethereum", lag_blocks=50)
    for p in ETH:
        await api.probe(p, "head_ethereum")
    service = await service_for(api, IncidentSettings(settle_seconds=0))
    alert = provider_alert("EndpointDown", "drpc", category="rpc_nodes", severity="warning", endpoint="head_ethereum", chain="ethereum")
    e = await explained(service, notification([alert]))
    await service.stop()
    assert e["cause"] == Cause.STALE_NODE
    assert any(f.startswith("drpc/head_ethereum: 50 blocks behind the reference head of ethereum") for f in e["facts"])


async def test_rejected_key(api: ApiHarness) -> None:
    await api.fault(provider="coinmarketcap", invalid_keys="all")
    await api.probe_all("coinmarketcap")
    service = await service_for(api, IncidentSettings(settle_seconds=0))
    e = await explained(service, notification([provider_alert("ProviderDown", "coinmarketcap", category="market_data")]))
    await service.stop()
    assert e["cause"] == Cause.KEY_REJECTED
    assert any(f.startswith("coinmarketcap: key CMC_API_KEY rejected") for f in e["facts"])
    assert "POST /api/config/keys/test" in e["remediation"]


@pytest.mark.parametrize(
    ("alertname", "cause"), [("ApiKeysRejected", Cause.KEY_REJECTED), ("ChainHeadLagging", Cause.STALE_NODE), ("ProviderDown", Cause.UNKNOWN)]
)
async def test_without_facts_the_alert_decides(alertname: str, cause: Cause) -> None:
    service = IncidentService(IncidentSettings(settle_seconds=0), NoFacts())
    await service.start()
    result = await service.receive(notification([provider_alert(alertname, "binance")]))
    await service.idle()
    detail = await service.get(result.incident_id or 0)
    await service.stop()
    assert detail is not None and detail.incident.explanation is not None
    assert detail.incident.explanation["cause"] == cause and "no facts about the affected providers" in detail.incident.explanation["summary"]


def test_causes_are_the_documented_closed_set() -> None:
    from typing import get_args

    assert {c.value for c in Cause} == set(get_args(IncidentCause))
    assert set(ALERT_CAUSE.values()) <= set(Cause)


async def test_standalone_service_reads_the_facts_over_http(api: ApiHarness) -> None:
    """`crypto-api-exporter incidents`: its own app, facts from the exporter's JSON API."""
    await api.fault(provider="binance", status=503)
    await api.probe_all("binance")
    async with aiohttp.ClientSession() as session:
        service = IncidentService(IncidentSettings(settle_seconds=0), ExporterApiFacts(session, api.base))
        runner, port = await serve(build_incident_app(service, ApiSettings()), "127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{port}"
            async with session.post(f"{base}{WEBHOOK}", json=notification([provider_alert("ProviderDown", "binance")])) as resp:
                assert resp.status == 200 and (await resp.json())["action"] == "opened"
            await service.idle()
            async with session.get(f"{base}/api/incidents/1") as resp:
                one = await resp.json()
            assert one["explanation"]["cause"] == "outage" and one["explanation"]["facts_source"] == "exporter_api"
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
            assert "crypto_api_incidents_open 1.0" in text and 'crypto_api_incident_notifications_total{action="opened"} 1.0' in text
            # Its own requests, as the exporter counts its own: the webhook once, by route.
            webhook = (
                'http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="200",http_route="/api/incidents/webhook"} 1.0'
            )
            assert webhook in text
        finally:
            await runner.cleanup()


# ---------------------------------------------------------------- the LLM path and Slack


async def test_llm_once_per_incident_and_no_secret_in_the_prompt(api: ApiHarness, stubs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    llm = await stubs("ok")
    env_canary = "canary-env-secret-71c2d9"
    monkeypatch.setenv("INCIDENT_TEST_TOKEN", env_canary)
    config_key = api.keys["CMC_API_KEY"]  # a provider key of the running config
    gate = Gate()
    service = await service_for(api, IncidentSettings(settle_seconds=5, llm=LlmSettings(f"{llm.url}/v1", model="test", timeout=5)), sleep=gate.sleep)
    leaky = {"description": f"GET https://pro-api.coinmarketcap.com/v1/key/info?key={config_key} failed; token {env_canary}"}
    alerts = [provider_alert("ProviderDown", f"provider_{i:02d}", category="market_data", **leaky) for i in range(50)]
    for n in (10, 30, 50):  # a storm arriving in three notifications within the settle time
        await service.receive(notification(alerts[:n], group={"category": "market_data"}))
    await service.receive(notification([provider_alert("ProviderDown", "binance")]))  # a second incident
    gate.open.set()
    async with asyncio.timeout(GUARD):
        await service.idle()
    assert len(llm.bodies) == 2  # one call per incident, not per alert or notification
    for raw in llm.bodies:
        assert config_key not in raw and env_canary not in raw
    request = next(r for r in map(json.loads, llm.bodies) if "provider_49" in r["messages"][1]["content"])
    assert request["model"] == "test" and [m["role"] for m in request["messages"]] == ["system", "user"] and request["max_tokens"] == 300
    prompt = request["messages"][1]["content"]
    assert "key=***" in prompt and "token ***" in prompt and "provider_49" in prompt
    briefs = await service.recent_incidents(10)
    assert [b.explanation for b in briefs] == ["LLM: binance is returning 503s; wait for them."] * 2
    detail = await service.get(briefs[1].id)
    assert detail is not None and detail.incident.explanation is not None and detail.incident.explanation["source"] == "llm"
    assert detail.incident.explanation["summary"].startswith("Cause unknown")  # the rule text stays beside the LLM's
    assert [e.kind for e in detail.timeline][-2:] == [EventKind.EXPLAINED, EventKind.SUMMARIZED]
    assert service.llm_calls == {"ok": 2}
    await service.stop()


@pytest.mark.parametrize("mode", ["hang", "fail", "garbage"])
async def test_a_hanging_or_failing_llm_falls_back_to_the_rules(api: ApiHarness, stubs: Any, mode: str) -> None:
    llm = await stubs(mode)
    await api.fault(provider="binance", status=503)
    await api.probe_all("binance")
    service = await service_for(api, IncidentSettings(settle_seconds=0, llm=LlmSettings(f"{llm.url}/v1", timeout=0.3)))
    e = await explained(service, notification([provider_alert("ProviderDown", "binance")]))  # within GUARD: the 0.3 s timeout ended it
    await service.stop()
    assert len(llm.bodies) == 1
    assert e["source"] == "rules" and e["llm_summary"] is None and e["cause"] == Cause.OUTAGE
    assert e["timeline"] == [EventKind.OPENED, EventKind.EXPLAINED, EventKind.LLM_FAILED]
    assert service.llm_calls == {"failed": 1}


@pytest.mark.parametrize("mode", ["ok", "fail", "hang"])
async def test_slack_follow_up(api: ApiHarness, stubs: Any, tmp_path: Any, mode: str) -> None:
    slack = await stubs(mode)
    url_file = tmp_path / "slack_url"
    url_file.write_text(f"{slack.url}/services/T000/B000/XXXX\n")
    service = await service_for(api, IncidentSettings(settle_seconds=0, slack_url_file=str(url_file)))
    if mode == "hang":
        assert service._slack is not None
        service._slack.timeout = 0.3
    e = await explained(service, notification([provider_alert("ProviderDown", "binance")]))
    await service.stop()
    assert len(slack.bodies) == 1
    text = json.loads(slack.bodies[0])["text"]
    assert text.startswith("*Incident #1: ProviderDown: binance* (critical)\n")
    assert e["timeline"][-1] == (EventKind.NOTIFIED if mode == "ok" else EventKind.NOTIFY_FAILED)


async def test_the_webhook_action_is_reported_for_each_kind(api: ApiHarness) -> None:
    down = provider_alert("ProviderDown", "binance")
    answers = [
        await api.post(WEBHOOK, json=b)
        for b in (notification([resolved(down, time.time())]), notification([down]), notification([down]), notification([resolved(down, time.time())]))
    ]
    assert [a["action"] for a in answers] == [Action.IGNORED, Action.OPENED, Action.REPEATED, Action.RESOLVED]
    metrics = await api.metrics_text()
    assert 'crypto_api_incident_notifications_total{action="repeated"} 1.0' in metrics and "crypto_api_incidents_open 0.0" in metrics
