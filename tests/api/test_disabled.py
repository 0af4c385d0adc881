"""Disabled providers (they need a key and none is set, or are turned off) in the JSON API
and on /metrics: listed and counted apart, never probed, never down; and a reload that
finds a key (or an `enabled:` change) brings one back without a restart."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from exporter.selection import Choice

from .conftest import ApiHarness, StartApi

ETHERSCAN_KEYS = ("ETHERSCAN_API_KEY_1", "ETHERSCAN_API_KEY_2")
ETHERSCAN_FAMILY = {"etherscan", "bscscan", "polygonscan", "arbiscan"}  # they share those keys


async def no_etherscan_key(start_api: StartApi) -> ApiHarness:
    return await start_api(unset_keys=ETHERSCAN_KEYS, choice=Choice(disable=("binance",)))


def series(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


async def test_status_counts_disabled_providers_apart(start_api: StartApi) -> None:
    api = await no_etherscan_key(start_api)
    body = await api.get("/api/status")
    running = len(api.exporter.config.providers)
    assert body["disabled"] == len(ETHERSCAN_FAMILY) + 1
    assert body["total_apis"] == running == body["unknown"]  # disabled ones are not in the total, nor down
    assert body["offline"] == 0 and body["system_health"] == "unknown"
    await api.probe_all("kraken")
    body = await api.get("/api/status")
    assert (body["online"], body["offline"], body["disabled"]) == (1, 0, len(ETHERSCAN_FAMILY) + 1)


async def test_providers_lists_them_with_their_status_and_reason(start_api: StartApi) -> None:
    api = await no_etherscan_key(start_api)
    rows = {r["name"]: r for r in await api.get("/api/providers")}
    assert len(rows) == len(api.exporter.config.providers) + len(ETHERSCAN_FAMILY) + 1
    etherscan = rows["etherscan"]
    assert (etherscan["status"], etherscan["disabled_reason"], etherscan["has_key"]) == ("disabled", "no_key", False)
    assert [e["status"] for e in etherscan["endpoints"]] == [None] * len(etherscan["endpoints"])
    assert (rows["binance"]["status"], rows["binance"]["disabled_reason"]) == ("disabled", "flag")
    assert (rows["kraken"]["status"], rows["kraken"]["disabled_reason"]) == ("unknown", None)
    disabled = await api.get("/api/providers?status=disabled")
    assert {r["name"] for r in disabled} == ETHERSCAN_FAMILY | {"binance"}
    assert {r["name"] for r in await api.get("/api/providers?status=disabled&category=explorers")} == ETHERSCAN_FAMILY


async def test_a_disabled_provider_is_known_but_not_probed(start_api: StartApi) -> None:
    api = await no_etherscan_key(start_api)
    assert (await api.get("/api/logs?provider=etherscan"))["total"] == 0  # known: an empty answer, not a 404
    await api.get("/api/logs?provider=nosuch", status=404)
    body = await api.post("/api/schedule/trigger", json={"provider": "etherscan"}, status=409)
    assert (
        body["detail"]
        == "provider: 'etherscan' is disabled and not probed (it needs a key and none is set: set ETHERSCAN_API_KEY_1 or ETHERSCAN_API_KEY_2 to probe it)"
    )
    body = await api.post("/api/config/keys/test", json={"provider": "binance"}, status=409)
    assert body["detail"] == "provider: 'binance' is disabled and not probed (--disable on the command line)"
    keys = {r["provider"]: r for r in await api.get("/api/config/keys")}
    assert keys["etherscan"]["status"] == "missing"  # where a missing key shows
    assert not [j for j in api.exporter.jobs() if j.provider in ETHERSCAN_FAMILY]
    assert {r["provider"] for r in await api.get("/api/schedule")}.isdisjoint(ETHERSCAN_FAMILY)


async def test_metrics_show_a_disabled_provider_in_info_and_status_only(start_api: StartApi) -> None:
    api = await no_etherscan_key(start_api)
    await api.probe_all("kraken")
    lines = series(await api.metrics_text())
    etherscan = [(name, labels, value) for name, labels, value in lines if labels.get("provider") == "etherscan"]
    assert {name for name, _, _ in etherscan} == {"crypto_api_provider_status", "crypto_api_provider_info"}
    status = {labels["status"]: value for name, labels, value in etherscan if name == "crypto_api_provider_status"}
    assert status == {"online": 0, "degraded": 0, "offline": 0, "unknown": 0, "disabled": 1}
    (info,) = [labels for name, labels, _ in etherscan if name == "crypto_api_provider_info"]
    assert (info["enabled"], info["requires_key"]) == ("false", "true")
    kraken = {(name, labels.get("status"), labels.get("enabled")): value for name, labels, value in lines if labels.get("provider") == "kraken"}
    assert kraken[("crypto_api_provider_status", "disabled", None)] == 0 and kraken[("crypto_api_provider_info", None, "true")] == 1
    # No series an alert could read as down: no up, no key_valid, no breaker for them.
    assert not [n for n, labels, _ in lines if labels.get("provider") in ETHERSCAN_FAMILY and n.startswith(("crypto_api_up", "crypto_api_key_valid"))]


async def test_a_key_found_on_reload_enables_the_provider_and_a_lost_one_disables_it(start_api: StartApi) -> None:
    api = await start_api(unset_keys=ETHERSCAN_KEYS)
    assert api.exporter.config.disabled_provider("etherscan") is not None
    api.keys["ETHERSCAN_API_KEY_2"] = "good-test-key-0001-etherscan_api_key_2"
    await api.post("/-/reload")
    assert api.exporter.config.disabled_provider("etherscan") is None
    assert {j.endpoint for j in api.exporter.jobs() if j.provider == "etherscan"} == {ep.name for ep in api.exporter.config.provider("etherscan").endpoints}
    result = await api.probe("etherscan", api.exporter.config.provider("etherscan").endpoints[0].name)
    assert result.ok, result
    assert (await api.get("/api/status"))["disabled"] == 0
    del api.keys["ETHERSCAN_API_KEY_2"]
    await api.post("/-/reload")
    assert {r["name"] for r in await api.get("/api/providers?status=disabled")} == ETHERSCAN_FAMILY
    assert not [s for s in series(await api.metrics_text()) if s[1].get("provider") == "etherscan" and s[0] == "crypto_api_up"]
