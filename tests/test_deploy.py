"""The deployment files say what the platform needs: parsed, not eyeballed."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import yaml

from service.jsonio import MAX_BODY_BYTES
from service.settings import Settings
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def secret_refs(container: dict) -> dict[str, str]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }


def test_kustomization_lists_every_manifest_but_the_examples():
    listed = set(load("kustomization.yaml")["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml", "ingress.example.yaml"}


def test_the_example_ingress_bounds_what_the_service_cannot():
    ingress = load("ingress.example.yaml")
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/limit-connections"]) > 0
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == f"{MAX_BODY_BYTES // 1024}k"
    # Event streams: a heartbeat arrives before the proxy gives up reading,
    # and nothing sits in a buffer.
    heartbeat = next(f for f in fields(Settings) if f.name == "events_heartbeat").metadata["read"][
        1
    ]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > heartbeat
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == load("service.yaml")["metadata"]["name"]
    assert backend["port"]["number"] == load("service.yaml")["spec"]["ports"][0]["port"]


def test_the_configmap_sets_the_slow_client_deadlines():
    data = load("configmap.yaml")["data"]
    assert float(data["CLIENT_HEADER_TIMEOUT"]) <= 10
    assert float(data["CLIENT_BODY_TIMEOUT"]) <= 10
    # Above ingress-nginx's upstream keep-alive (60 s), so it never reuses
    # a connection the service is closing.
    assert float(data["KEEPALIVE_TIMEOUT"]) > 60


def test_the_deployment_probes_health_and_ready():
    api = containers(load("deployment.yaml"))[0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["args"][0] == "serve"


def test_the_deployment_drains_before_it_is_killed():
    spec = load("deployment.yaml")["spec"]
    pod = spec["template"]["spec"]
    shutdown = int(load("configmap.yaml")["data"]["SHUTDOWN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > shutdown
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ["deployment.yaml", "migrate-job.yaml"])
def test_secrets_come_from_a_secret_and_pods_are_locked_down(name):
    doc = load(name)
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in containers(doc):
        assert secret_refs(container) == {
            "DATABASE_URL": "todo-api",
            "BETTER_AUTH_SECRET": "todo-api",
        }
        plain = {e["name"]: e.get("value") for e in container.get("env", []) if "value" in e}
        assert not {"DATABASE_URL", "BETTER_AUTH_SECRET"} & set(plain)
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["requests"]["memory"]
        assert resources["limits"]["cpu"]
        assert resources["limits"]["memory"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


def test_the_configmap_holds_no_secret():
    data = load("configmap.yaml")["data"]
    assert not {"DATABASE_URL", "BETTER_AUTH_SECRET"} & set(data)


def test_the_example_secret_holds_no_real_value():
    data = load("secret.example.yaml")["stringData"]
    assert set(data.values()) == {"REPLACE-ME"}


def test_the_migration_job_runs_migrate_once():
    job = load("migrate-job.yaml")
    assert containers(job)[0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1


def test_the_service_targets_the_api_port():
    service = load("service.yaml")
    deployment = load("deployment.yaml")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert containers(deployment)[0]["ports"][0]["containerPort"] == 8000


def test_compose_migrates_before_serving():
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["image"] == services["migrate"]["image"]
    assert "8000:8000" in api["ports"]
    # The secret must be supplied; compose refuses to start without it.
    assert ":?" in services["migrate"]["environment"]["BETTER_AUTH_SECRET"]


def test_the_dockerfile_is_a_safe_production_image():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=", text, re.M)
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\}", text, re.M)) == 2  # multi-stage
    final = text.rsplit("\nFROM ", 1)[1]
    user = re.search(r"^USER (\S+)", final, re.M)
    assert user
    assert user[1] not in ("root", "0")
    assert 'ENTRYPOINT ["todo-api"]' in final
    assert 'CMD ["serve"]' in final
    assert "HEALTHCHECK" in final
    assert "/health" in final
    assert "APP_ENV=production" in final
    assert "SECRET" not in final.replace("BETTER_AUTH_SECRET", "")


def test_dockerignore_keeps_secrets_and_junk_out_of_the_build():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv"):
        assert entry in ignored


def test_metrics_are_scraped_on_their_own_port_and_the_ingress_cannot_reach_it():
    metrics_port = int(load("configmap.yaml")["data"]["METRICS_PORT"])
    deployment = load("deployment.yaml")
    pod = deployment["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in containers(deployment)[0]["ports"]}
    assert ports["metrics"] == metrics_port != ports["http"]
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/port"] == str(metrics_port)
    assert notes["prometheus.io/path"] == "/metrics"
    # The ingress reaches the Service's ports only, and they lead to the API
    # port, which answers /metrics 404 once METRICS_PORT is set.
    service = load("service.yaml")
    exposed = {p["port"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert set(exposed.values()) == {"http"}
    ingress = load("ingress.example.yaml")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert exposed[backend["port"]["number"]] == "http"


def test_compose_serves_metrics_on_their_own_port_to_this_host_only():
    api = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"]["api"]
    metrics_port = api["environment"]["METRICS_PORT"]
    assert f"127.0.0.1:{metrics_port}:{metrics_port}" in api["ports"]
    assert f"{metrics_port}:{metrics_port}" not in api["ports"]  # not on every interface
