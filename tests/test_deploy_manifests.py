"""compose.yaml, deploy/k8s and deploy/docker agree with the devstack (no network, nothing started)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_TEMPLATE = REPO / "deploy" / "devstack" / "env.template"
SERVICES = ("room", "recorder", "compositor", "hook", "notifier")
PORTS = {"room": 8101, "recorder": 8102, "compositor": 8103, "hook": 8104, "notifier": 8105}
# Containers listen on all interfaces; the devstack's processes keep their default (127.0.0.1).
CONTAINER_ONLY = {f"{svc.upper()}_HOST" for svc in SERVICES}


def template_names() -> list[str]:
    names = [
        m.group(1)
        for line in ENV_TEMPLATE.read_text().splitlines()
        if (m := re.match(r"^([A-Z][A-Z0-9_]*)=", line))
    ]
    assert len(names) == len(set(names)), "duplicate variable in env.template"
    return names


def load_stack_module(name: str) -> ModuleType:
    """Import deploy/devstack/stack/<name>.py (not an installed package) by path."""
    devstack_dir = REPO / "deploy" / "devstack"
    if str(devstack_dir) not in sys.path:
        sys.path.insert(0, str(devstack_dir))
    spec = importlib.util.find_spec(f"stack.{name}")
    assert spec is not None
    return importlib.import_module(f"stack.{name}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def test_env_template_has_the_architecture_variables() -> None:
    names = set(template_names())
    assert {
        "POSTGRES_DSN",
        "KAFKA_BOOTSTRAP_SERVERS",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "S3_SECURE",
        "S3_BUCKET",
        "S3_REGION",
        "MIXDOWN_PUBLIC_URL",
        "MIXDOWN_MASTER_KEY",
        "JANUS_URL",
        "JANUS_ADMIN_KEY",
        "NOTIFIER_ALLOW_PRIVATE_CALLBACKS",
    } | {f"{svc.upper()}_PORT" for svc in SERVICES} <= names


@pytest.mark.parametrize("service", [*SERVICES, "migrate"])
def test_compose_service_env_names_match_the_devstack(service: str) -> None:
    env = compose()["services"][service]["environment"]
    assert isinstance(env, dict)
    assert set(env) - CONTAINER_ONLY == set(template_names())
    assert env[f"{service.upper()}_HOST" if service != "migrate" else "ROOM_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_from_the_one_image(service: str) -> None:
    spec = compose()["services"][service]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert spec["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert str(PORTS[service]) == spec["environment"][f"{service.upper()}_PORT"]
    assert f"{service.upper()}_PORT" in spec["healthcheck"]["test"][-1]
    assert "/readyz" in spec["healthcheck"]["test"][-1]
    assert spec["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    if service == "room":
        assert spec["depends_on"]["janus"] == {"condition": "service_healthy"}


def test_compose_infrastructure_matches_the_devstack() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    layout = load_stack_module("layout")
    assert services["kafka"]["image"] == f"apache/kafka:{layout.KAFKA_VERSION}"
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert services["minio"]["image"].startswith("minio/minio:")
    assert "mixdown-media" in services["minio-init"]["command"][0]
    assert services["edge"]["volumes"] == ["./deploy/docker/edge.conf:/etc/nginx/nginx.conf:ro"]
    assert services["edge"]["ports"] == ["127.0.0.1:8080:8080"]


def test_docker_edge_conf_is_rendered_from_the_devstack_template() -> None:
    edge = load_stack_module("edge")
    rendered = edge.render_edge(edge.docker_values())
    committed = (REPO / "deploy" / "docker" / "edge.conf").read_text()
    assert committed.split("\n", 1)[1] == rendered, "run: deploy/devstack/devstack render-docker-edge"
    for svc in ("room", "recorder", "compositor", "hook"):
        assert f"server {svc}:{PORTS[svc]};" in rendered


def test_devstack_edge_routes_room_recordings_before_rooms() -> None:
    edge = load_stack_module("edge")
    conf = edge.render_edge(edge.devstack_values(("client_body", "proxy")))
    assert "@@" not in conf
    recordings = conf.index("location ~ ^/v1/Rooms/[^/]+/Recordings")
    assert "proxy_pass http://recorder;" in conf[recordings : conf.index("\n", recordings)]
    assert re.search(r"location /v1/Rooms \{ proxy_pass http://room; \}", conf)
    assert re.search(r"location /v1/CompositionHooks \{ proxy_pass http://hook; \}", conf)
    assert "listen 127.0.0.1:8080;" in conf and "listen 10.77.0.254:8080;" in conf
    assert "proxy_pass http://room/internal/janus/events;" in conf


def test_k8s_manifests_parse_and_carry_the_same_env_names() -> None:
    docs = k8s_docs()
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert ("Namespace", "mixdown") in kinds
    for svc in SERVICES:
        assert ("Deployment", svc) in kinds and ("Service", svc) in kinds
    for name in ("postgres", "kafka", "minio"):
        assert ("StatefulSet", name) in kinds
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(config["data"]) | set(secret["stringData"]) == set(template_names())
    assert not set(config["data"]) & set(secret["stringData"])


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment_probes_and_env(service: str) -> None:
    deployment = next(d for d in k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == service)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert container["ports"][0]["containerPort"] == PORTS[service]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    sources = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert sources == {"mixdown-config", "mixdown-secrets"}
    assert {e["name"] for e in container["env"]} <= CONTAINER_ONLY


def test_k8s_ingress_routes_like_the_edge() -> None:
    ingress = next(d for d in k8s_docs() if d["kind"] == "Ingress")
    routes = {
        p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes == {
        "/v1/Rooms/[^/]+/Recordings": "recorder",
        "/v1/Recordings": "recorder",
        "/v1/RecordingSettings": "recorder",
        "/v1/Rooms": "room",
        "/v1/Compositions": "compositor",
        "/v1/CompositionSettings": "compositor",
        "/v1/CompositionHooks": "hook",
        "/whip": "room",
        "/whep": "room",
        "/rooms-ui": "room",
    }


def test_k8s_kustomization_lists_every_manifest() -> None:
    k8s = REPO / "deploy" / "k8s"
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    files = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
