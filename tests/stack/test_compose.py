"""docker-compose.yml, its override files, Dockerfile and .dockerignore, validated
statically (no Docker engine here): the Compose Specification's JSON schema, what
`docker compose up` alone starts (the demo, with no variable and no secret set), the
overrides for the live APIs and the real receivers, mounted paths, ports, the wiring
between the configs, and every env var name the files and docs give."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from exporter.config import load_config

from .compose import ALERTMANAGERS, BASE, COMPOSE, SERVICES, flag, mounted, published
from .conftest import ALERTMANAGER_DIR, GRAFANA_DIR, PROMETHEUS_DIR, REPO, alertmanager_binary
from .helpers import alertmanager_args, free_port, running

LIVE = REPO / "compose.live.yml"
RECEIVERS = REPO / "compose.receivers.yml"
COMPOSE_FILES = (BASE, LIVE, RECEIVERS)
SCHEMA = REPO / ".cache/compose-spec/compose.schema.json"  # tools/compose-schema fetches it


def merged(*overrides: Path) -> dict:
    """`docker compose -f docker-compose.yml -f OVERRIDE` for the keys our overrides
    use: mappings merge, `command` replaces, sequences (env_file, secrets) append."""

    def merge(base: object, over: object, key: str = "") -> object:
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base[k], v, k) if k in base else v for k, v in {**base, **over}.items()}
        if isinstance(base, list) and isinstance(over, list) and key not in ("command", "entrypoint"):
            return base + [v for v in over if v not in base]
        return over

    doc: object = COMPOSE
    for path in overrides:
        doc = merge(doc, yaml.safe_load(path.read_text()))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    if not SCHEMA.is_file():
        fetched = subprocess.run([str(REPO / "tools/compose-schema")], capture_output=True, text=True, timeout=120)
        if fetched.returncode != 0:
            message = f"tools/compose-schema could not fetch the Compose schema: {fetched.stderr.strip()}"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    return json.loads(SCHEMA.read_text())


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_valid_against_the_compose_specification(compose_schema: dict, path: Path) -> None:
    validator = jsonschema.Draft7Validator(compose_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert not errors, errors


def test_the_schema_rejects_a_broken_file(compose_schema: dict) -> None:
    # The schema is strict (additionalProperties: false), so it catches a typo.
    broken = {"services": {"exporter": {"image": "x", "comand": ["run"]}}}
    assert list(jsonschema.Draft7Validator(compose_schema).iter_errors(broken))


def test_up_alone_starts_the_whole_stack_on_the_demo() -> None:
    assert set(SERVICES) == {"exporter", "prometheus", "alertmanager-0", "alertmanager-1", "grafana"}
    assert not any("profiles" in svc for svc in SERVICES.values()), "`docker compose up` must start every service"
    exporter = SERVICES["exporter"]
    assert exporter["build"] == "." and (REPO / "Dockerfile").is_file()
    assert exporter["command"][0] == "demo"
    assert "--simulator.listen-address=:7861" in exporter["command"]


def test_up_alone_needs_no_variable_and_no_secret() -> None:
    # Compose refuses to start a service whose `environment:` secret is unset, and
    # `${VAR:?}` aborts; `env_file` without `required: false` fails on a missing file.
    text = BASE.read_text()
    assert "secrets" not in COMPOSE and not any("secrets" in svc for svc in SERVICES.values())
    assert not re.search(r"\$\{?[A-Za-z_]", text), "no interpolation: nothing needs to be set"
    for svc in SERVICES.values():
        assert "env_file" not in svc


def test_the_live_override_runs_the_registry_with_keys_from_an_optional_env_file() -> None:
    live = merged(LIVE)["services"]["exporter"]
    assert live["command"] == ["run", "--web.listen-address=:7860", "--feeds", "shipped"]
    assert live["env_file"] == [{"path": ".env", "required": False}], "starts with no .env: providers without keys are disabled"
    assert set(yaml.safe_load(LIVE.read_text())["services"]) == {"exporter"}


# ---- feeds in the compose stack (issue 12)
def test_the_demo_the_stack_runs_holds_the_six_feeds_open() -> None:
    from exporter.demo import demo_feeds

    assert SERVICES["exporter"]["command"][0] == "demo"  # `demo` always runs the feeds (exporter/demo.py)
    feeds = demo_feeds("http://127.0.0.1:7861")
    assert {f.venue.value for f in feeds.feeds} == {"binance", "coinbase", "kraken", "okx", "bybit", "bitstamp"}
    assert all(f.url.startswith("ws://127.0.0.1:7861/") for f in feeds.feeds), "the demo's feeds read its simulator"


def test_the_live_override_runs_the_shipped_feeds_against_the_real_venues() -> None:
    from exporter.cli import _parser
    from exporter.feeds.config import feeds_path, load_feeds

    command = merged(LIVE)["services"]["exporter"]["command"]
    shipped = feeds_path(_parser().parse_args(command).feeds_file, env={})  # as `crypto-api-exporter` parses it
    assert shipped is not None
    feeds = load_feeds(shipped)
    assert len({f.venue for f in feeds.feeds}) == 6
    assert all(f.url.startswith("wss://") for f in feeds.feeds), "real venues, over TLS"
    # The image carries feeds.yaml only if the build context does (setup.py copies it
    # into the package; a file .dockerignore leaves out fails `pip install .`).
    allowed = {line.strip()[1:] for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip().startswith("!")}
    assert {"feeds.yaml", "providers.yaml", "providers.schema.json"} <= allowed


def test_the_stack_loads_the_feeds_rules_and_dashboard() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    rules = [path for pattern in config["rule_files"] for path in PROMETHEUS_DIR.glob(pattern)]
    assert PROMETHEUS_DIR / "rules" / "feeds.rules.yml" in rules
    mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["grafana"]["volumes"]}
    provisioning = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/crypto-api.yml").read_text())
    assert mounts["./grafana/dashboards"] == provisioning["providers"][0]["options"]["path"]
    feeds = json.loads((GRAFANA_DIR / "dashboards" / "feeds.json").read_text())
    assert feeds["title"] and any("crypto_api_feed_" in json.dumps(panel) for panel in feeds["panels"])


# ---- end feeds


def test_the_receivers_override_feeds_alertmanager_its_secrets_from_the_environment() -> None:
    doc = merged(RECEIVERS)
    config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    files = {config["global"]["slack_api_url_file"]}
    for receiver in config["receivers"]:
        files |= {c["routing_key_file"] for c in receiver.get("pagerduty_configs", [])}
    # Every node of the cluster: whichever sends a notification reads them.
    (secrets,) = {frozenset(doc["services"][node]["secrets"]) for node in ALERTMANAGERS}
    assert files == {f"/run/secrets/{s}" for s in secrets}
    for secret in secrets:
        assert set(doc["secrets"][secret]) == {"environment"}, "secrets never live in a committed file"


def test_alertmanager_starts_without_the_secret_files(tmp_path: Path) -> None:
    """The base file gives Alertmanager no secrets: the real binary must still load the
    committed alertmanager.yml (it reads the *_file settings only when it sends)."""
    assert not any(Path(f"/run/secrets/{name}").exists() for name in ("slack_webhook_url", "pagerduty_routing_key")), "the test would prove nothing"
    port = free_port()
    args = alertmanager_args(alertmanager_binary(), mounted("alertmanager-0", "--config.file"), tmp_path, port)
    with running(args, tmp_path / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready") as proc:
        assert proc.poll() is None


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        if "build" in svc:
            continue
        assert re.search(r":v?\d+\.\d+\.\d+$", svc["image"]), f"{name}: pin {svc['image']} to a version"


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
    expected = {
        "exporter": {7860: 7860, 7861: 7861},
        "prometheus": {9090: 9090},
        "alertmanager-0": {9093: 9093},
        "alertmanager-1": {9093: 9095},
        "grafana": {3000: 3000},
    }
    assert {name: published(svc) for name, svc in SERVICES.items()} == expected


def test_compose_mounts_the_configs_the_stack_tests_check() -> None:
    assert mounted("prometheus", "--config.file").resolve() == (PROMETHEUS_DIR / "prometheus.yml").resolve()
    for node in ALERTMANAGERS:
        assert mounted(node, "--config.file").resolve() == (ALERTMANAGER_DIR / "alertmanager.yml").resolve()
    mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["grafana"]["volumes"]}
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/crypto-api.yml").read_text())
    assert mounts["./grafana/dashboards"] == dashboards["providers"][0]["options"]["path"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA_DIR / "dashboards" / Path(home).name).is_file()


def test_promtool_checks_the_config_compose_mounts(promtool: str) -> None:
    path = mounted("prometheus", "--config.file")
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_amtool_checks_the_config_compose_mounts(amtool: str) -> None:
    path = mounted("alertmanager-0", "--config.file")
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_anonymous_viewer() -> None:
    env = SERVICES["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def host_port(target: str) -> tuple[str, int]:
    host, port = target.rsplit(":", 1)
    return host, int(port)


def test_prometheus_targets_resolve_to_services() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    targets += [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, port = host_port(target)
        if host == "localhost":
            continue
        assert host in SERVICES, f"{target}: no such service"
        # Inside the network the container port counts; every service publishes it 1:1.
        assert port in published(SERVICES[host]), target
    exporter_job = next(j for j in config["scrape_configs"] if j["job_name"] == "crypto-api-exporter")
    assert exporter_job["static_configs"][0]["targets"] == ["exporter:7860"]


def test_the_alertmanagers_form_one_gossip_cluster() -> None:
    """Two nodes, each listening for gossip on 9094 and naming every other node as a
    peer, each with its own storage (the nflog and silences are per node)."""
    assert ALERTMANAGERS == ["alertmanager-0", "alertmanager-1"]
    storage = set()
    for node in ALERTMANAGERS:
        assert flag(node, "--cluster.listen-address") == ["0.0.0.0:9094"]
        peers = flag(node, "--cluster.peer")
        assert sorted(peers) == [f"{other}:9094" for other in ALERTMANAGERS if other != node], node
        assert SERVICES[node]["image"] == SERVICES[ALERTMANAGERS[0]]["image"], "one version across the cluster"
        (data,) = [v.split(":")[0] for v in SERVICES[node]["volumes"] if v.split(":")[1] == flag(node, "--storage.path")[0]]
        storage.add(data)
    assert len(storage) == len(ALERTMANAGERS), "a data volume per node"
    # The same command apart from the peers and the URL each node's links carry.
    assert len({tuple(a for a in SERVICES[n]["command"] if not a.startswith(("--cluster.peer=", "--web.external-url="))) for n in ALERTMANAGERS}) == 1
    for node in ALERTMANAGERS:
        assert flag(node, "--web.external-url") == [f"http://localhost:{published(SERVICES[node])[9093]}"]


def test_prometheus_sends_to_every_alertmanager_and_drops_the_replica_label() -> None:
    """Every node listed, never one address in front of them (alertmanager's README, "High
    Availability"); the HA pair's `replica` label dropped from alerts (docs/deploy.md)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (targets,) = [sc["targets"] for sc in alertmanagers["static_configs"]]
    assert targets == [f"{node}:9093" for node in ALERTMANAGERS]
    (scraped,) = [sc["targets"] for job in config["scrape_configs"] if job["job_name"] == "alertmanager" for sc in job["static_configs"]]
    assert scraped == targets, "every node scraped, under one job (the Alertmanager mixin's cluster alerts need it)"
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    assert set(SERVICES["prometheus"]["depends_on"]) == set(ALERTMANAGERS)


def test_grafana_datasource_points_at_the_prometheus_service() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    host, port = host_port(doc["datasources"][0]["url"].removeprefix("http://"))
    assert host in SERVICES and port in published(SERVICES[host])


# Env var names the files and docs give a user to set. A provider key's name must be
# one the registry reads (ETHERSCAN_KEY_1 was documented while it reads
# ETHERSCAN_API_KEY_1: a key set that way was silently ignored).
ENV_NAME = re.compile(r"(?<![-\w])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:KEY|API_KEY|TOKEN|SECRET|PASSPHRASE)(?:_\d+)?(?:_FILE)?\b")
NOT_PROVIDER_KEYS = {
    "PAGERDUTY_ROUTING_KEY",  # Alertmanager's, compose.receivers.yml
    "TRAFFIC_API_KEY",  # the key of your own API's /dashboard (docs/traffic.md), not a provider's
    "LLM_KEY",  # LLM_KEY_FILE: the incident service's LLM key (docs/incidents.md)
    "INCIDENTS_KEY",  # an aiohttp AppKey in docs/incidents.md's code sample, not a variable
}
DOCUMENTS = (*COMPOSE_FILES, REPO / "README.md", REPO / "Dockerfile", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "deploy").rglob("*.y*ml")))


def registry_env_names() -> set[str]:
    config = load_config(None, {})
    return {n for p in (*config.providers, *(d.provider for d in config.disabled)) for n in p.auth.env}


def test_every_key_variable_named_in_compose_and_docs_is_read_by_the_registry() -> None:
    known = registry_env_names() | NOT_PROVIDER_KEYS
    assert "ETHERSCAN_API_KEY_1" in known and "ETHERSCAN_KEY_1" not in known
    wrong = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in DOCUMENTS
        if path.is_file()
        for name in set(ENV_NAME.findall(path.read_text()))
        if name.removesuffix("_FILE") not in known
    )
    assert not wrong, f"env vars the registry never reads (providers.yaml auth.env): {wrong}"


def test_the_name_check_would_catch_the_old_mistake() -> None:
    assert ENV_NAME.findall("keys in .env (ETHERSCAN_KEY_1=...), header X-CMC_PRO_API_KEY") == ["ETHERSCAN_KEY_1"]


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "EXPOSE 7860" in text
    assert 'ENTRYPOINT ["crypto-api-exporter"]' in text  # [project.scripts] in pyproject.toml
    assert re.search(r"^USER \S+", text, re.M), "do not run as root"
    assert "HEALTHCHECK" in text and "/healthz" in text


def test_incidents_survive_a_restart_of_the_exporter_container() -> None:
    """INCIDENTS_DB on a named volume whose mount point the image creates for its user
    (Docker seeds an empty named volume with that directory's owner)."""
    exporter = SERVICES["exporter"]
    path = Path(exporter["environment"]["INCIDENTS_DB"])
    (volume,) = [v for v in exporter["volumes"] if v.split(":")[1] == str(path.parent)]
    assert volume.split(":")[0] in COMPOSE["volumes"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"mkdir -p {path.parent} && chown 10001:10001 {path.parent}" in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert "INCIDENTS_DB" in (REPO / "docs" / "incidents.md").read_text()


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "ignore everything, then allow what the build needs"
    assert {"!pyproject.toml", "!exporter/"} <= set(lines)
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "crypto-api-exporter" in scripts
