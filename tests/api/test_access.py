"""API_TOKENS, ALLOWED_IPS, PROTECT_METRICS and CORS_ORIGINS against a running exporter."""

from __future__ import annotations

import aiohttp
import pytest

from .conftest import TOKEN, StartApi

GUARDED = ["/api/status", "/api/providers", "/api/logs", "/api/config/keys"]


@pytest.mark.parametrize("path", GUARDED)
async def test_token_required(start_api: StartApi, path: str) -> None:
    api = await start_api(env={"API_TOKENS": f"other-token, {TOKEN}"}, use_token=False)
    body = await api.get(path, 401)
    assert body["error"] == "unauthorized" and "token" in body["detail"]
    body = await api.get(path, 401, headers={"Authorization": "Bearer wrong"})
    assert body["detail"] == "invalid API token"
    await api.get(path, 200, headers={"Authorization": f"Bearer {TOKEN}"})
    await api.get(path, 200, headers={"X-API-Key": TOKEN})
    await api.get(path, 200, headers={"X-API-Key": "other-token"})
    await api.get(f"{path}?token={TOKEN}", 401)  # query tokens are for WebSockets only


async def test_open_routes_stay_open(start_api: StartApi) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN, "ALLOWED_IPS": "10.0.0.0/8"}, use_token=False)
    for path in ("/healthz", "/metrics", "/openapi.json", "/docs"):
        async with api.http.get(f"{api.base}{path}") as resp:
            assert resp.status == 200, path


async def test_post_needs_token_too(start_api: StartApi) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN}, use_token=False)
    await api.post("/api/schedule/trigger", 401, json={"provider": "binance"})
    await api.post("/api/config/keys/test", 401, json={"provider": "etherscan"})


@pytest.mark.parametrize(
    ("allowed", "status"),
    [("10.0.0.0/8, 192.168.1.7", 403), ("::1", 403), ("127.0.0.0/8", 200), ("10.0.0.0/8,127.0.0.1", 200)],
)
async def test_ip_allowlist(start_api: StartApi, allowed: str, status: int) -> None:
    api = await start_api(env={"ALLOWED_IPS": allowed, "API_TOKENS": TOKEN})
    body = await api.get("/api/status", status)
    if status == 403:
        assert body["error"] == "forbidden" and "ALLOWED_IPS" in body["detail"]
    async with api.http.get(f"{api.base}/healthz") as resp:
        assert resp.status == 200


async def test_websocket_token_in_query(start_api: StartApi) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN}, use_token=False)
    ws_url = api.base.replace("http://", "ws://")
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await api.http.ws_connect(f"{ws_url}/ws/live")
    assert e.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await api.http.ws_connect(f"{ws_url}/ws/live?token=wrong")
    assert e.value.status == 401
    for url, headers in ((f"{ws_url}/ws/live?token={TOKEN}", {}), (f"{ws_url}/ws?api_key={TOKEN}", {}), (f"{ws_url}/ws/master", {"X-API-Key": TOKEN})):
        async with api.http.ws_connect(url, headers=headers) as ws:
            msg = await ws.receive_json(timeout=2)
            assert msg["type"] == "connection_established"


async def test_websocket_outside_allowlist(start_api: StartApi) -> None:
    api = await start_api(env={"ALLOWED_IPS": "10.1.2.3"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await api.http.ws_connect(api.base.replace("http://", "ws://") + "/ws/live")
    assert e.value.status == 403


async def test_protected_metrics(start_api: StartApi) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN, "PROTECT_METRICS": "true"}, use_token=False)
    async with api.http.get(f"{api.base}/metrics") as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    async with api.http.get(f"{api.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200 and "crypto_api_up" in await resp.text()
    async with api.http.get(f"{api.base}/healthz") as resp:
        assert resp.status == 200


async def test_cors(start_api: StartApi) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN, "CORS_ORIGINS": "https://dash.example.com"})
    origin = {"Origin": "https://dash.example.com"}
    async with api.http.get(f"{api.base}/api/status", headers={**api.headers, **origin}) as resp:
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    async with api.http.get(f"{api.base}/api/status", headers={**api.headers, "Origin": "https://evil.example.com"}) as resp:
        assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    # A preflight carries no credentials: it is answered before the token check.
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with api.http.options(f"{api.base}/api/schedule/trigger", headers=preflight) as resp:
        assert resp.status == 204
        assert "POST" in resp.headers["Access-Control-Allow-Methods"] and "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    async with api.http.options(f"{api.base}/api/status", headers={**preflight, "Origin": "https://evil.example.com"}) as resp:
        assert resp.status == 403
    # Errors carry the CORS header too, so a browser can read them.
    async with api.http.get(f"{api.base}/api/status", headers=origin) as resp:
        assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"


async def test_cors_wildcard(start_api: StartApi) -> None:
    api = await start_api(env={"CORS_ORIGINS": "*"})
    async with api.http.get(f"{api.base}/api/status", headers={"Origin": "https://anything.example"}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_no_token_in_logs_or_metrics(start_api: StartApi, capsys: pytest.CaptureFixture[str]) -> None:
    api = await start_api(env={"API_TOKENS": TOKEN})
    await api.get(f"/api/status?token={TOKEN}")
    await api.get("/api/status", 401, headers={"Authorization": f"Bearer {TOKEN}-nope"})
    async with api.http.ws_connect(api.base.replace("http://", "ws://") + f"/ws/live?token={TOKEN}") as ws:
        await ws.receive_json(timeout=2)
    text = await api.metrics_text()
    out = capsys.readouterr()
    assert TOKEN not in text and TOKEN not in out.out and TOKEN not in out.err


# ---------------------------------------------------------------- routes that act

ACTIONS = [("/api/schedule/trigger", {"provider": "binance"}), ("/api/config/keys/test", {"provider": "etherscan"})]


@pytest.mark.parametrize(("path", "body"), ACTIONS)
async def test_actions_refused_on_an_open_api_without_the_flag(start_api: StartApi, path: str, body: dict[str, str]) -> None:
    """No tokens and no --web.enable-actions: anyone who reaches the port could spend quota."""
    api = await start_api(enable_actions=False)
    answer = await api.post(path, 403, json=body)
    assert answer["error"] == "forbidden"
    assert "API_TOKENS" in answer["detail"] and "--web.enable-actions" in answer["detail"]
    assert api.sim.request_count(body["provider"]) == 0  # nothing was sent to the provider
    await api.get("/api/status", 200)  # reading stays open


@pytest.mark.parametrize(("path", "body"), ACTIONS)
async def test_actions_allowed_with_tokens_or_the_flag(start_api: StartApi, path: str, body: dict[str, str]) -> None:
    with_tokens = await start_api(env={"API_TOKENS": TOKEN}, enable_actions=False)
    with_flag = await start_api(enable_actions=True)
    for api in (with_tokens, with_flag):
        api.exporter.scheduler.apply(api.exporter.config)  # jobs to trigger, not started
        async with api.http.post(f"{api.base}{path}", json=body, headers=api.headers) as resp:
            assert resp.status == 200, await resp.text()


async def test_lifecycle_reload_needs_the_flag(start_api: StartApi) -> None:
    off = await start_api(enable_lifecycle=False)
    async with off.http.post(f"{off.base}/-/reload") as resp:
        assert resp.status == 403
        body = await resp.json()
        assert body["error"] == "forbidden" and "--web.enable-lifecycle" in body["detail"] and "SIGHUP" in body["detail"]
    on = await start_api(enable_lifecycle=True)
    async with on.http.post(f"{on.base}/-/reload") as resp:
        assert (resp.status, await resp.json()) == (200, {"status": "ok"})
