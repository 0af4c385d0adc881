"""docker-compose.yml, Dockerfile and .dockerignore, validated statically (no Docker
engine here): services, profiles, mounted paths, ports, and the wiring between the
configs (scrape targets, Alertmanager, Grafana datasource, secrets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import ALERTMANAGER_DIR, GRAFANA_DIR, PROMETHEUS_DIR, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def profile_services(profile: str | None) -> dict[str, dict]:
    """Services started by `docker compose [--profile P] up`."""
    return {
        name: svc for name, svc in SERVICES.items()
        if not svc.get("profiles") or (profile is not None and profile in svc["profiles"])
    }  # fmt: skip


def network_names(name: str, service: dict) -> set[str]:
    names = {name}
    for network in (service.get("networks") or {}).values():
        names |= set((network or {}).get("aliases", []))
    return names


def published(service: dict) -> dict[int, int]:
    out = {}
    for port in service.get("ports", []):
        host, container = str(port).rsplit(":", 1)[-2:] if str(port).count(":") else (port, port)
        out[int(container)] = int(host)
    return out


def test_services_present() -> None:
    assert set(SERVICES) == {"exporter", "exporter-demo", "prometheus", "alertmanager", "grafana"}


@pytest.mark.parametrize("profile", ["live", "demo"])
def test_each_profile_runs_one_exporter_reachable_as_exporter(profile: str) -> None:
    running = profile_services(profile)
    exporters = [n for n in running if n.startswith("exporter")]
    assert len(exporters) == 1, exporters
    assert "exporter" in network_names(exporters[0], running[exporters[0]])
    assert {"prometheus", "alertmanager", "grafana"} <= set(running)


def test_demo_profile_runs_the_simulator() -> None:
    demo = SERVICES["exporter-demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["command"][0] == "demo"
    assert any(a.startswith("--simulator.listen-address=") for a in demo["command"])
    assert SERVICES["exporter"]["command"][0] == "run"


def test_exporters_build_from_the_dockerfile() -> None:
    for name in ("exporter", "exporter-demo"):
        assert SERVICES[name]["build"] == "."
    assert (REPO / "Dockerfile").is_file()


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: pin {image} to a version"


def test_every_mounted_host_path_exists() -> None:
    named_volumes = set(COMPOSE.get("volumes", {}))
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target.startswith("/"), volume
            if source.startswith((".", "/")):
                assert (REPO / source).resolve().exists(), f"{name}: {source} does not exist"
            else:
                assert source in named_volumes, f"{name}: undeclared volume {source}"


def test_ports() -> None:
    expected = {"exporter": {7860: 7860}, "exporter-demo": {7860: 7860, 7861: 7861},
                "prometheus": {9090: 9090}, "alertmanager": {9093: 9093}, "grafana": {3000: 3000}}  # fmt: skip
    assert {name: published(svc) for name, svc in SERVICES.items()} == expected


def test_mounts_match_the_config_paths() -> None:
    def mount(service: str, host: str) -> str:
        return next(v.split(":")[1] for v in SERVICES[service]["volumes"] if v.split(":")[0] == host)

    prom_dir = mount("prometheus", "./prometheus")
    assert f"--config.file={prom_dir}/prometheus.yml" in SERVICES["prometheus"]["command"]
    am_dir = mount("alertmanager", "./alertmanager")
    assert f"--config.file={am_dir}/alertmanager.yml" in SERVICES["alertmanager"]["command"]
    assert mount("grafana", "./grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/crypto-api.yml").read_text())
    assert mount("grafana", "./grafana/dashboards") == dashboards["providers"][0]["options"]["path"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA_DIR / "dashboards" / Path(home).name).is_file()


def test_grafana_anonymous_viewer() -> None:
    env = SERVICES["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def host_port(target: str) -> tuple[str, int]:
    host, port = target.rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize("profile", ["live", "demo"])
def test_prometheus_targets_resolve_to_services(profile: str) -> None:
    running = profile_services(profile)
    reachable = {alias: svc for name, svc in running.items() for alias in network_names(name, svc)}
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    targets += [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, port = host_port(target)
        if host == "localhost":
            continue
        assert host in reachable, f"{target}: no such service in profile {profile}"
        # Inside the network the container port counts; every service publishes it 1:1.
        assert port in published(reachable[host]), target
    exporter_job = next(j for j in config["scrape_configs"] if j["job_name"] == "crypto-api-exporter")
    assert exporter_job["static_configs"][0]["targets"] == ["exporter:7860"]


def test_grafana_datasource_points_at_the_prometheus_service() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    host, port = host_port(doc["datasources"][0]["url"].removeprefix("http://"))
    assert host in SERVICES and port in published(SERVICES[host])


def test_alertmanager_secrets_come_from_the_environment() -> None:
    config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    files = {config["global"]["slack_api_url_file"]}
    for receiver in config["receivers"]:
        files |= {c["routing_key_file"] for c in receiver.get("pagerduty_configs", [])}
    secrets = set(SERVICES["alertmanager"]["secrets"])
    assert files == {f"/run/secrets/{s}" for s in secrets}
    for secret in secrets:
        assert set(COMPOSE["secrets"][secret]) == {"environment"}, "secrets never live in a committed file"


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "EXPOSE 7860" in text
    assert 'ENTRYPOINT ["crypto-api-exporter"]' in text  # [project.scripts] in pyproject.toml
    assert re.search(r"^USER \S+", text, re.M), "do not run as root"
    assert "HEALTHCHECK" in text and "/healthz" in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "ignore everything, then allow what the build needs"
    assert {"!pyproject.toml", "!exporter/"} <= set(lines)
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "crypto-api-exporter" in scripts
