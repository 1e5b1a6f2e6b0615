"""The devstack itself: every listener answers, the edge routes like video.twilio.com, the media netns
exists, `status` is green, a second `up` is a quick no-op, and Kafka transactions work on one node."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio import Minio

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEVSTACK = REPO / "deploy" / "devstack" / "devstack"
NETNS_ADDR = REPO / "deploy" / "devstack" / "netns-addr"
RUN = REPO / "var" / "run"
EDGE = "http://127.0.0.1:8080"
SERVICE_PORTS = {"room": 8101, "recorder": 8102, "compositor": 8103, "hook": 8104, "notifier": 8105}
INFRA_LISTENERS = [
    ("edge", "127.0.0.1", 8080),
    ("edge-netns", "10.77.0.254", 8080),
    ("janus-event-sink", "10.77.0.254", 8099),
    ("postgres", "127.0.0.1", 5433),
    ("kafka", "127.0.0.1", 9092),
    ("kafka-controller", "127.0.0.1", 9093),
    ("minio", "127.0.0.1", 9000),
    ("minio-console", "127.0.0.1", 9001),
    ("janus-http", "10.77.0.1", 8088),
    ("janus-admin", "10.77.0.1", 7088),
]
# A path of each service's API behind the edge, and the service that must answer it.
ROUTES = [
    ("/v1/Rooms", "room"),
    ("/v1/Rooms/RM00000000000000000000000000000000/Participants", "room"),
    ("/v1/Rooms/RM00000000000000000000000000000000/Recordings", "recorder"),
    ("/v1/Recordings", "recorder"),
    ("/v1/RecordingSettings/Default", "recorder"),
    ("/v1/Compositions", "compositor"),
    ("/v1/CompositionSettings/Default", "compositor"),
    ("/v1/CompositionHooks", "hook"),
]


def service_exists(name: str) -> bool:
    return (REPO / "services" / name / "__main__.py").exists()


def devstack_cmd(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEVSTACK), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def pids() -> dict[str, str]:
    return {path.stem: path.read_text().strip() for path in sorted(RUN.glob("*.pid"))}


@pytest.mark.parametrize(("name", "host", "port"), INFRA_LISTENERS, ids=[x[0] for x in INFRA_LISTENERS])
def test_infrastructure_listener_answers(devstack: dict[str, str], name: str, host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=3):
        pass


@pytest.mark.parametrize("name", list(SERVICE_PORTS))
def test_service_ready(devstack: dict[str, str], name: str) -> None:
    if not service_exists(name):
        pytest.skip(f"services/{name} has no __main__ yet")
    for probe in ("/healthz", "/readyz"):
        response = httpx.get(f"http://127.0.0.1:{SERVICE_PORTS[name]}{probe}", timeout=5)
        assert response.status_code == 200, (name, probe, response.text)


def test_edge_healthz_on_both_addresses(devstack: dict[str, str]) -> None:
    for base in (EDGE, "http://10.77.0.254:8080"):
        response = httpx.get(f"{base}/healthz", timeout=5)
        assert response.status_code == 200
        assert response.text.strip() == "ok"


def test_unknown_path_is_twilio_json_404(devstack: dict[str, str]) -> None:
    response = httpx.get(f"{EDGE}/v1/NoSuchResource/abc", timeout=5)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "code": 20404,
        "message": "The requested resource /v1/NoSuchResource/abc was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


@pytest.mark.parametrize(("path", "service"), ROUTES, ids=[r[0] for r in ROUTES])
def test_edge_routes_api_paths_to_running_services(devstack: dict[str, str], path: str, service: str) -> None:
    # Which upstream answers which path is checked in tests/test_edge_routing.py with stand-in upstreams;
    # here the real services answer: without credentials every /v1 resource is a Twilio 401.
    if not service_exists(service):
        pytest.skip(f"services/{service} has no __main__ yet")
    if not path.startswith("/v1/"):
        pytest.skip("not a REST API path")
    response = httpx.get(f"{EDGE}{path}", timeout=10)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 20003


def test_janus_answers_info_from_the_host(devstack: dict[str, str]) -> None:
    response = httpx.get(f"{devstack['JANUS_URL']}/info", timeout=5)
    info = response.json()
    assert info["janus"] == "server_info"
    assert "janus.plugin.videoroom" in info["plugins"]
    assert set(info["plugins"]) == {"janus.plugin.videoroom"}
    assert "janus.eventhandler.sampleevh" in info["events"]


def test_media_namespace_exists(devstack: dict[str, str]) -> None:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "mixdown" in netns.split()
    host = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", "mxd0"], capture_output=True, text=True, check=True
    )
    assert " 10.77.0.254/24 " in host.stdout
    inside = subprocess.run(
        ["ip", "-n", "mixdown", "-o", "-4", "addr", "show", "dev", "mxd1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert " 10.77.0.1/24 " in inside.stdout
    lo = subprocess.run(
        ["ip", "-n", "mixdown", "link", "show", "lo"], capture_output=True, text=True, check=True
    )
    assert "UP" in lo.stdout


def test_netns_addr_adds_and_removes_client_addresses(devstack: dict[str, str]) -> None:
    def has_addr() -> bool:
        out = subprocess.run(
            ["ip", "-n", "mixdown", "-o", "-4", "addr", "show", "dev", "mxd1"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return " 10.77.0.98/24 " in out

    subprocess.run([str(NETNS_ADDR), "ADD", "10.77.0.98"], check=True)
    subprocess.run([str(NETNS_ADDR), "ADD", "10.77.0.98"], check=True)  # idempotent
    try:
        assert has_addr()
        # A client inside the namespace reaches the edge through the veth.
        curl = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                "mixdown",
                "curl",
                "-sf",
                "--interface",
                "10.77.0.98",
                "http://10.77.0.254:8080/healthz",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert curl.returncode == 0 and curl.stdout.strip() == "ok", curl.stderr
    finally:
        subprocess.run([str(NETNS_ADDR), "DEL", "10.77.0.98"], check=True)
    assert not has_addr()
    assert (
        subprocess.run([str(NETNS_ADDR), "ADD", "192.168.1.1"], check=False, capture_output=True).returncode
        == 2
    )


def test_status_reports_everything_up(devstack: dict[str, str]) -> None:
    result = devstack_cmd("status", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {
        line.split()[0]: line.split()
        for line in result.stdout.splitlines()[1:]
        if line and not line.startswith("logs")
    }
    for name in ("postgres", "kafka", "minio", "janus", "edge"):
        assert rows[name][2:4] == ["running", "healthy"], rows[name]
    assert rows["netns"][2:4] == ["present", "healthy"]
    for name in SERVICE_PORTS:
        expected = ["running", "healthy"] if service_exists(name) else ["missing", "-"]
        assert rows[name][2:4] == expected, rows[name]


def test_second_up_is_a_quick_no_op(devstack: dict[str, str]) -> None:
    before = pids()
    assert {"postgres", "kafka", "minio", "janus", "edge"} <= set(before)
    started = time.monotonic()
    result = devstack_cmd("up", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 20, f"second up took {elapsed:.1f}s"
    assert pids() == before


def test_env_files_carry_the_contract(devstack: dict[str, str]) -> None:
    assert devstack["POSTGRES_DSN"] == "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown"
    assert devstack["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert devstack["S3_BUCKET"] == "mixdown-media"
    assert devstack["MIXDOWN_URL"] == "http://127.0.0.1:8080"
    assert devstack["NOTIFIER_ALLOW_PRIVATE_CALLBACKS"] == "true"
    assert len(devstack["MIXDOWN_MASTER_KEY"]) == 44


async def test_postgres_accepts_the_mixdown_role(devstack: dict[str, str]) -> None:
    conn = await asyncpg.connect(devstack["POSTGRES_DSN"])
    try:
        assert await conn.fetchval("SELECT current_database() || ':' || current_user") == "mixdown:mixdown"
        assert (await conn.fetchval("SHOW server_version")).startswith("15.")
    finally:
        await conn.close()


def test_minio_has_the_bucket(devstack: dict[str, str]) -> None:
    client = Minio(
        devstack["S3_ENDPOINT"],
        access_key=devstack["S3_ACCESS_KEY"],
        secret_key=devstack["S3_SECRET_KEY"],
        secure=False,
    )
    assert client.bucket_exists(devstack["S3_BUCKET"])


async def test_kafka_transactions_work_on_one_node(devstack: dict[str, str]) -> None:
    bootstrap = devstack["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"devstack-test-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(topic, b"last")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, isolation_level="read_committed", auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < 2 and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                values += [record.value for records in batch.values() for record in records if record.value]
        finally:
            await consumer.stop()
        assert values == [b"committed", b"last"]
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def test_auto_topic_creation_is_off(devstack: dict[str, str]) -> None:
    from_props = (REPO / "var" / "kafka" / "server.properties").read_text()
    assert "auto.create.topics.enable=false" in from_props.splitlines()


def test_up_restarts_only_what_died(devstack: dict[str, str]) -> None:
    before = pids()
    stopped = devstack_cmd("stop", "edge", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert "edge" not in pids()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{EDGE}/healthz", timeout=5)
    assert devstack_cmd("status", "--check", "--quiet").returncode == 1
    result = devstack_cmd("up", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    after = pids()
    assert after["edge"] != before["edge"]
    assert {k: v for k, v in after.items() if k != "edge"} == {k: v for k, v in before.items() if k != "edge"}
    assert httpx.get(f"{EDGE}/healthz", timeout=5).status_code == 200


def test_env_and_logs_subcommands(devstack: dict[str, str]) -> None:
    env = devstack_cmd("env")
    assert env.returncode == 0
    exported = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exported["KAFKA_BOOTSTRAP_SERVERS"] == "'127.0.0.1:9092'"
    logs = devstack_cmd("logs", "--no-follow", "-n", "50", "edge", timeout=30)
    assert logs.returncode == 0
    assert ' HTTP/1.1" ' in logs.stdout


@pytest.mark.parametrize("path", [r[0] for r in ROUTES if r[0].startswith("/v1/")])
def test_dev_credentials_authenticate_through_the_edge(devstack: dict[str, str], path: str) -> None:
    if "TWILIO_API_KEY" not in devstack:
        pytest.skip("no dev account (mixdown CLI missing)")
    service = dict(ROUTES)[path]
    if not service_exists(service):
        pytest.skip(f"services/{service} has no __main__ yet")
    for user, password in (
        (devstack["TWILIO_API_KEY"], devstack["TWILIO_API_SECRET"]),
        (devstack["TWILIO_ACCOUNT_SID"], devstack["TWILIO_AUTH_TOKEN"]),
    ):
        response = httpx.get(f"{EDGE}{path}", auth=(user, password), timeout=10)
        assert response.status_code != 401, response.text
        assert response.headers["content-type"].startswith("application/json")
    wrong = httpx.get(f"{EDGE}{path}", auth=(devstack["TWILIO_API_KEY"], "wrong"), timeout=10)
    assert wrong.status_code == 401


def test_janus_videoroom_takes_string_room_ids_and_the_admin_key(devstack: dict[str, str]) -> None:
    janus = devstack["JANUS_URL"]

    def call(url: str, body: dict[str, object]) -> Any:
        response = httpx.post(url, json={**body, "transaction": uuid.uuid4().hex}, timeout=10)
        assert response.status_code == 200
        return response.json()

    session_url = f"{janus}/{call(janus, {'janus': 'create'})['data']['id']}"
    try:
        handle = call(session_url, {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        handle_url = f"{session_url}/{handle['data']['id']}"
        room = "RM" + uuid.uuid4().hex
        denied = call(handle_url, {"janus": "message", "body": {"request": "create", "room": room}})[
            "plugindata"
        ]
        assert "admin_key" in denied["data"]["error"]
        create = {"request": "create", "room": room, "admin_key": devstack["JANUS_ADMIN_KEY"]}
        created = call(handle_url, {"janus": "message", "body": create})["plugindata"]
        assert created["data"] == {"videoroom": "created", "room": room, "permanent": False}
        destroyed = call(handle_url, {"janus": "message", "body": {"request": "destroy", "room": room}})
        assert destroyed["plugindata"]["data"]["videoroom"] == "destroyed"
    finally:
        call(session_url, {"janus": "destroy"})
    admin_url = devstack["JANUS_ADMIN_URL"]
    assert call(admin_url, {"janus": "list_sessions"})["error"]["code"] == 403
    listed = call(admin_url, {"janus": "list_sessions", "admin_secret": devstack["JANUS_ADMIN_SECRET"]})
    assert listed["janus"] == "success"
