"""deploy/: the Kubernetes manifests are valid for the newest Kubernetes schema kubernetes-validate ships
(offline, strict: unknown fields are errors) and agree with each other and with the code: selectors
match pod labels, probes hit the gateway's own /healthz and /readyz, every LOCKGATE_SERVE_* variable is
a ServeSettings field, the registry URL comes from the Secret, the HPA scales the gateway Deployment, the
retention CronJob runs a command the CLI accepts."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serving.settings import ServeSettings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # not in the core schema; checked below


def _resources() -> dict[tuple[str, str], dict]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            found[doc["kind"], doc["metadata"]["name"]] = doc
    return found


RESOURCES = _resources()


CORE = sorted(k for k, doc in RESOURCES.items() if (doc["apiVersion"], doc["kind"]) not in CRDS)


@pytest.mark.parametrize("key", CORE, ids=lambda k: f"{k[0]}/{k[1]}")
def test_every_manifest_is_valid_kubernetes(key):
    kubernetes_validate.validate(RESOURCES[key], kubernetes_validate.latest_version(), strict=True)


def test_every_kustomization_file_is_listed():
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def _container(name: str) -> dict:
    return RESOURCES["Deployment", name]["spec"]["template"]["spec"]["containers"][0]


def test_the_gateway_probes_its_own_health_routes_and_reads_the_registry_from_the_secret():
    gateway = _container("lockgate-gateway")
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in gateway["env"]}
    secret = env["LOCKGATE_REGISTRY_URL"]["valueFrom"]["secretKeyRef"]
    assert ("Secret", secret["name"]) in RESOURCES
    assert secret["key"] in RESOURCES["Secret", secret["name"]]["stringData"]
    fields = set(ServeSettings.model_fields)
    for name in env:
        if name.startswith("LOCKGATE_SERVE_"):
            assert name.removeprefix("LOCKGATE_SERVE_").lower() in fields, name
    # one worker per requested core
    assert int(env["LOCKGATE_SERVE_WORKERS"]["value"]) == int(gateway["resources"]["requests"]["cpu"])
    console = _container("lockgate-console")
    assert console["env"][0]["valueFrom"]["secretKeyRef"]["name"] == secret["name"]


@pytest.mark.parametrize("name", ["lockgate-gateway", "lockgate-console"])
def test_services_select_their_deployments_pods_on_a_named_port(name):
    service, deployment = RESOURCES["Service", name], RESOURCES["Deployment", name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["name"] for p in _container(name)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_the_hpa_scales_the_gateway_deployment():
    hpa = RESOURCES["HorizontalPodAutoscaler", "lockgate-gateway"]["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "lockgate-gateway")
    replicas = RESOURCES["Deployment", "lockgate-gateway"]["spec"]["replicas"]
    assert hpa["minReplicas"] <= replicas <= hpa["maxReplicas"]


def test_the_service_monitor_scrapes_the_gateway_service():
    monitor = RESOURCES["ServiceMonitor", "lockgate-gateway"]["spec"]
    service = RESOURCES["Service", "lockgate-gateway"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_the_prune_cronjob_runs_a_command_the_cli_accepts_against_the_registry_secret():
    from cascade_registry.feedback_cli import build_parser

    job = RESOURCES["CronJob", "lockgate-feedback-prune"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    command = container["command"]
    assert command[:2] == ["lockgate", "feedback"]
    args = build_parser().parse_args(command[2:])
    assert args.command == "prune" and args.older_than == 30 * 86400 and not args.dry_run
    secret = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert container["env"][0]["name"] == "LOCKGATE_REGISTRY_URL" and ("Secret", secret["name"]) in RESOURCES
