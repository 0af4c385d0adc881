"""deploy/kubernetes/monitoring: the Alertmanager gossip cluster and the Prometheus HA
pair on Kubernetes. kustomize renders it (the real kubectl), every Kubernetes object
passes kubernetes-validate (strict), the prometheus-operator kinds are checked field
by field, and the wiring holds: both peers listed by their pod DNS names on the
headless Service, gossip open on 9094 TCP and UDP between the nodes only, one node
always up, the same image and config as docker-compose.yml, and a Prometheus pair that
sends to every Alertmanager pod and drops its `replica` label from alerts."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tools import kubernetes as generator

from .compose import ALERTMANAGERS, SERVICES, flag
from .conftest import ALERTMANAGER_DIR, PROMETHEUS_DIR, REPO
from .test_kubernetes import K8S_VERSION, render

MONITORING = REPO / "deploy" / "kubernetes" / "monitoring"
CRD_KINDS = {"ServiceMonitor", "Prometheus"}  # prometheus-operator: no schema in kubernetes-validate
GOSSIP = 9094

Objects = dict[tuple[str, str], dict]


@pytest.fixture(scope="module")
def objs() -> Objects:
    docs = render(MONITORING)
    by_key = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(by_key) == len(docs), "one object per kind and name"
    return by_key


def named(objs: Objects, kind: str, name: str) -> dict:
    return objs[(kind, name)]


def container(objs: Objects) -> dict:
    (c,) = named(objs, "StatefulSet", "alertmanager")["spec"]["template"]["spec"]["containers"]
    return c


def args(c: dict, name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in c["args"] if a.startswith(f"{name}=")]


def test_every_object_is_there_and_valid(objs: Objects) -> None:
    assert {k for k, _ in objs} == {
        "StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy",
        "ServiceMonitor", "Prometheus", "ServiceAccount", "Role", "RoleBinding",
    }  # fmt: skip
    assert ("StatefulSet", "crypto-api-incidents") in objs
    for (kind, _), obj in objs.items():
        if kind not in CRD_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises, naming the field


def test_a_statefulset_of_two_peers_by_their_pod_dns_names(objs: Objects) -> None:
    sts = named(objs, "StatefulSet", "alertmanager")
    replicas = sts["spec"]["replicas"]
    assert replicas == 2
    peers_service = named(objs, "Service", sts["spec"]["serviceName"])
    assert peers_service["spec"]["clusterIP"] == "None", "the governing Service is headless: pods get DNS names"
    assert peers_service["spec"]["publishNotReadyAddresses"] is True, "peers resolve before they are ready"
    assert {(p["port"], p["protocol"]) for p in peers_service["spec"]["ports"]} == {(GOSSIP, "TCP"), (GOSSIP, "UDP")}
    c = container(objs)
    assert args(c, "--cluster.listen-address") == [f"0.0.0.0:{GOSSIP}"]
    # Every pod, itself included (Alertmanager leaves its own address out when joining).
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    assert sorted(args(c, "--cluster.peer")) == [f"{name}-{i}.{service}:{GOSSIP}" for i in range(replicas)]
    assert {(p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"] if p["containerPort"] == GOSSIP} == {(GOSSIP, "TCP"), (GOSSIP, "UDP")}
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert peers_service["spec"]["selector"].items() <= labels.items()


def test_the_same_alertmanager_as_compose(objs: Objects) -> None:
    c = container(objs)
    assert {SERVICES[node]["image"] for node in ALERTMANAGERS} == {c["image"]}
    for name in ("--config.file", "--storage.path"):
        assert args(c, name) == flag(ALERTMANAGERS[0], name), name
    # The ConfigMap holds the committed files (test_kubernetes.py: the copies are current).
    config = named(objs, "ConfigMap", next(n for k, n in objs if k == "ConfigMap"))
    assert config["data"] == {p.name: generator.alertmanager_copy(p)() for p in generator.alertmanager_files()}
    # ... whose incident webhook reaches the standalone incident service, not compose's host.
    assert "http://crypto-api-incidents:7862/api/incidents/webhook" in config["data"]["alertmanager.yml"]
    assert "http://exporter:" not in config["data"]["alertmanager.yml"]
    # Mounted where alertmanager.yml's relative template glob and *_file settings look.
    committed = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    pod = named(objs, "StatefulSet", "alertmanager")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir = Path(args(c, "--config.file")[0]).parent
    assert Path(mounts["config"]) == config_dir
    items = {i["key"]: config_dir / i["path"] for i in volumes["config"]["configMap"]["items"]}
    assert items["alertmanager.yml"] == Path(args(c, "--config.file")[0])
    (glob,) = committed["templates"]
    assert all(p.match(str(config_dir / glob)) for k, p in items.items() if k.endswith(".tmpl"))
    files = {committed["global"]["slack_api_url_file"]} | {
        pd["routing_key_file"] for r in committed["receivers"] for pd in r.get("pagerduty_configs", [])
    }  # fmt: skip
    assert {str(Path(f).parent) for f in files} == {mounts["receivers"]}
    assert volumes["receivers"]["secret"]["optional"] is True, "the pods start without the receivers' Secret"
    assert pod["automountServiceAccountToken"] is False


def test_one_node_always_up(objs: Objects) -> None:
    pdb = named(objs, "PodDisruptionBudget", "alertmanager")
    labels = named(objs, "StatefulSet", "alertmanager")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_gossip_is_open_between_the_nodes_only(objs: Objects) -> None:
    policy = named(objs, "NetworkPolicy", "alertmanager")
    labels = named(objs, "StatefulSet", "alertmanager")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()

    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        (rule,) = [r for r in policy["spec"][direction] if any(p["port"] == GOSSIP for p in r["ports"])]
        assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {(GOSSIP, "TCP"), (GOSSIP, "UDP")}, direction
        (peer,) = rule[peer_key]
        assert set(peer) == {"podSelector"} and peer["podSelector"]["matchLabels"].items() <= labels.items(), direction
    web = [r for r in policy["spec"]["ingress"] if any(p["port"] == 9093 for p in r["ports"])]
    assert web and all("from" not in r for r in web), "Prometheus, wherever it runs, reaches 9093"
    # The incident webhook: out to the incident service's pods on its port.
    (incidents,) = [r for r in policy["spec"]["egress"] if any(p["port"] == 7862 for p in r["ports"])]
    (service,) = incidents["to"]
    assert service["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "crypto-api-incidents"}


def test_the_incident_service_keeps_its_incidents_on_a_volume_and_is_where_alertmanager_sends(objs: Objects) -> None:
    """One writer (SQLite), its file on a claimed volume under a read-only root, non-root,
    and the Service name and port alertmanager.yml's Kubernetes copy posts to."""
    sts = named(objs, "StatefulSet", "crypto-api-incidents")
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][0] == "incidents"
    db = Path(args(c, "--incidents.db")[0])
    mounts = {m["name"]: Path(m["mountPath"]) for m in c["volumeMounts"]}
    assert db.parent == mounts["data"] and [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001
    assert args(c, "--exporter-url") == ["http://crypto-api-exporter:7860"]  # the base's Service
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = named(objs, "Service", "crypto-api-incidents")
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    port = args(c, "--web.listen-address")[0].rsplit(":", 1)[1]
    assert [p["port"] for p in service["spec"]["ports"]] == [int(port)]
    webhook = yaml.safe_load(generator.alertmanager_copy(ALERTMANAGER_DIR / "alertmanager.yml")())
    (receiver,) = [r for r in webhook["receivers"] if r["name"] == "incidents"]
    assert receiver["webhook_configs"][0]["url"] == f"http://{service['metadata']['name']}:{port}/api/incidents/webhook"
    policy = named(objs, "NetworkPolicy", "crypto-api-incidents")
    assert [p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]] == [int(port)]
    egress = {p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}
    assert {7860, 9090, 53} <= egress


def test_the_prometheus_pair_sends_to_every_alertmanager_and_drops_its_replica_label(objs: Objects) -> None:
    prom = named(objs, "Prometheus", "crypto-api")
    spec = prom["spec"]
    assert prom["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(spec) <= {
        "version", "replicas", "replicaExternalLabelName", "externalLabels", "scrapeInterval", "evaluationInterval",
        "retention", "serviceAccountName", "serviceMonitorSelector", "ruleSelector", "alerting", "securityContext", "resources",
    }  # fmt: skip
    assert spec["replicas"] == 2
    # The operator adds `replica: <pod name>` and drops it from alerts, as prometheus.yml does.
    committed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert spec["replicaExternalLabelName"] == "replica"
    assert committed["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": spec["replicaExternalLabelName"]}]
    assert spec["externalLabels"] == committed["global"]["external_labels"]
    assert f"prom/prometheus:{spec['version']}" == SERVICES["prometheus"]["image"]
    # Every pod behind the headless web Service: discovered one by one, never balanced.
    (am,) = spec["alerting"]["alertmanagers"]
    web = named(objs, "Service", am["name"])
    assert web["spec"]["clusterIP"] == "None"
    assert am["port"] in {p["name"] for p in web["spec"]["ports"]} and am["apiVersion"] == "v2"
    # It may read what it needs to discover them.
    account = named(objs, "ServiceAccount", spec["serviceAccountName"])["metadata"]["name"]
    binding = named(objs, "RoleBinding", account)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    role = named(objs, binding["roleRef"]["kind"], binding["roleRef"]["name"])
    readable = {res for rule in role["rules"] if {"list", "watch"} <= set(rule["verbs"]) for res in rule["resources"]}
    assert {"services", "endpoints", "endpointslices", "pods"} <= readable


def test_the_prometheus_pair_selects_the_exporter_and_the_alertmanagers(objs: Objects) -> None:
    spec = named(objs, "Prometheus", "crypto-api")["spec"]
    exporter = {(d["kind"], d["metadata"]["name"]): d for d in render("single")}
    monitors = [exporter[("ServiceMonitor", "crypto-api-exporter")], named(objs, "ServiceMonitor", "alertmanager")]
    for monitor in monitors:
        assert spec["serviceMonitorSelector"]["matchLabels"].items() <= monitor["metadata"]["labels"].items(), monitor["metadata"]["name"]
    rule = exporter[("PrometheusRule", "crypto-api-exporter")]
    assert spec["ruleSelector"]["matchLabels"].items() <= rule["metadata"]["labels"].items()
    am_monitor = named(objs, "ServiceMonitor", "alertmanager")["spec"]
    web = named(objs, "Service", "alertmanager")
    assert am_monitor["selector"]["matchLabels"].items() <= web["metadata"]["labels"].items()
    (endpoint,) = am_monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in web["spec"]["ports"]}
    # The peers' Service carries the same name label, but no such port: not scraped twice.
    assert endpoint["port"] not in {p["name"] for p in named(objs, "Service", "alertmanager-cluster")["spec"]["ports"]}
