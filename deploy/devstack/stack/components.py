"""The processes of the devstack: how each is prepared, started, stopped and probed."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass

from . import probes
from .commands import DevstackError, run, say
from .config import janus_lib_dir, render_template, write_private
from .edge import devstack_values, render_edge, temp_modules
from .layout import (
    EDGE_PORT,
    HOST_ADDR,
    KAFKA_HOME,
    MINIO_BIN,
    NETNS,
    NS_ADDR,
    PG_BIN,
    PG_DATA,
    PG_PORT,
    PG_SOCKET_DIR,
    REPO,
    SERVICE_PORTS,
    VAR,
    VENV_PYTHON,
)

Env = dict[str, str]


@dataclass(frozen=True)
class Component:
    name: str
    address: str
    probe: Callable[[Env], str | None]
    command: Callable[[Env], list[str]]
    prepare: Callable[[Env], None] = lambda env: None
    user: Callable[[], str | None] = lambda: None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 20.0
    startup_timeout: float = 90.0
    is_service: bool = False
    available: Callable[[], str | None] = lambda: None
    extra_env: Callable[[Env], Env] = lambda env: {}


# --- PostgreSQL 15 --------------------------------------------------------------------------------


def _pg_user() -> str | None:
    """Postgres refuses to run as root: use the Debian `postgres` account then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise DevstackError("user postgres missing (is the postgresql package installed?)") from error
    return "postgres"


def _pg_prepare(env: Env) -> None:
    user = _pg_user()
    PG_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(PG_SOCKET_DIR, user, user)
    if (PG_DATA / "PG_VERSION").exists():
        return
    say("initialising PostgreSQL in var/pg")
    PG_DATA.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(PG_DATA, user, user)
    PG_DATA.chmod(0o700)
    run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(PG_DATA),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        user=user,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    (PG_DATA / "postgresql.auto.conf").write_text(
        f"listen_addresses = '127.0.0.1'\n"
        f"port = {PG_PORT}\n"
        f"unix_socket_directories = '{PG_SOCKET_DIR}'\n"
        "max_connections = 200\n"
        "shared_buffers = 128MB\n"
        "fsync = on\n"
        "log_min_messages = warning\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
    )
    # The unix socket (in var/run/pg) is trusted for the superuser; TCP needs the password.
    (PG_DATA / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    if user is not None:
        for path in (PG_DATA / "postgresql.auto.conf", PG_DATA / "pg_hba.conf"):
            shutil.chown(path, user, user)


def pg_bootstrap() -> None:
    """Role and database `mixdown` (idempotent), through the superuser's unix socket."""
    psql = [
        str(PG_BIN / "psql"),
        "-h",
        str(PG_SOCKET_DIR),
        "-p",
        str(PG_PORT),
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
    ]
    sql = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mixdown') THEN "
        "CREATE ROLE mixdown LOGIN PASSWORD 'mixdown'; END IF; END $$;"
    )
    run([*psql, "-d", "postgres", "-qc", sql])
    exists = run([*psql, "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'mixdown'"])
    if exists.stdout.strip() != "1":
        run([*psql, "-d", "postgres", "-qc", "CREATE DATABASE mixdown OWNER mixdown"])


POSTGRES = Component(
    name="postgres",
    address=f"127.0.0.1:{PG_PORT}",
    probe=lambda env: probes.postgres(),
    command=lambda env: [str(PG_BIN / "postgres"), "-D", str(PG_DATA)],
    prepare=_pg_prepare,
    user=_pg_user,
    stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for clients to disconnect
    stop_timeout=30.0,
)

# --- Kafka (KRaft, single node) -------------------------------------------------------------------

KAFKA_DIR = VAR / "kafka"


def _kafka_java(env: Env, main: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xms128m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
        "-cp",
        f"{KAFKA_HOME / 'libs'}/*",
        main,
        *args,
    ]


def _kafka_prepare(env: Env) -> None:
    values = {"KAFKA_DATA_DIR": str(KAFKA_DIR / "data")}
    props = render_template("server.properties", KAFKA_DIR / "server.properties", values)
    render_template("log4j2.properties", KAFKA_DIR / "log4j2.properties", values)
    if (KAFKA_DIR / "data" / "meta.properties").exists():
        return
    say("formatting Kafka KRaft storage in var/kafka")
    run(
        _kafka_java(env, "kafka.tools.StorageTool", "format", "-t", env["KAFKA_CLUSTER_ID"], "-c", str(props))
    )


KAFKA = Component(
    name="kafka",
    address="127.0.0.1:9092 (controller 9093)",
    probe=lambda env: probes.kafka_metadata(),
    command=lambda env: _kafka_java(env, "kafka.Kafka", str(KAFKA_DIR / "server.properties")),
    prepare=_kafka_prepare,
    stop_timeout=30.0,
)

# --- MinIO ----------------------------------------------------------------------------------------


def _minio_prepare(env: Env) -> None:
    (VAR / "minio").mkdir(parents=True, exist_ok=True)


MINIO = Component(
    name="minio",
    address="127.0.0.1:9000 (console 9001)",
    probe=lambda env: probes.http_ok("http://127.0.0.1:9000/minio/health/live"),
    command=lambda env: [
        str(MINIO_BIN),
        "server",
        str(VAR / "minio"),
        "--address",
        "127.0.0.1:9000",
        "--console-address",
        "127.0.0.1:9001",
        "--quiet",
    ],
    prepare=_minio_prepare,
    extra_env=lambda env: {
        "MINIO_ROOT_USER": env["S3_ACCESS_KEY"],
        "MINIO_ROOT_PASSWORD": env["S3_SECRET_KEY"],
        "MINIO_UPDATE": "off",
    },
)

# --- Janus (inside the netns) ---------------------------------------------------------------------

JANUS_DIR = VAR / "janus"


def _janus_prepare(env: Env) -> None:
    values = {
        "JANUS_CONFIG_DIR": str(JANUS_DIR),
        "JANUS_LIB_DIR": janus_lib_dir(),
        "JANUS_ADMIN_KEY": env["JANUS_ADMIN_KEY"],
        "JANUS_ADMIN_SECRET": env["JANUS_ADMIN_SECRET"],
    }
    for name in (
        "janus.jcfg",
        "janus.transport.http.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.eventhandler.sampleevh.jcfg",
    ):
        render_template(name, JANUS_DIR / name, values)


JANUS = Component(
    name="janus",
    address=f"{NS_ADDR}:8088 (admin 7088), netns {NETNS}",
    probe=lambda env: probes.janus_info(env["JANUS_URL"]),
    command=lambda env: [
        "ip",
        "netns",
        "exec",
        NETNS,
        "janus",
        "--disable-colors",
        "-C",
        str(JANUS_DIR / "janus.jcfg"),
        "-F",
        str(JANUS_DIR),
    ],
    prepare=_janus_prepare,
    stop_timeout=15.0,
)

# --- nginx edge -----------------------------------------------------------------------------------

NGINX_DIR = VAR / "nginx"


def _edge_prepare(env: Env) -> None:
    configure = run(["nginx", "-V"], check=False, quiet=True)
    modules = temp_modules(configure.stderr + configure.stdout)
    tmp = NGINX_DIR / "tmp"
    for module in modules:
        (tmp / module).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Workers run as nobody and spool request bodies there.
            shutil.chown(tmp / module, "nobody", "nogroup")
    (VAR / "run").mkdir(parents=True, exist_ok=True)
    conf = NGINX_DIR / "nginx.conf"
    write_private(conf, render_edge(devstack_values(modules)))
    run(["nginx", "-t", "-q", "-p", str(NGINX_DIR), "-c", str(conf)])


EDGE = Component(
    name="edge",
    address=f"127.0.0.1:{EDGE_PORT}, {HOST_ADDR}:{EDGE_PORT}, events {HOST_ADDR}:8099",
    probe=lambda env: (
        probes.http_ok(f"http://127.0.0.1:{EDGE_PORT}/healthz")
        or probes.http_ok(f"http://{HOST_ADDR}:{EDGE_PORT}/healthz")
    ),
    command=lambda env: ["nginx", "-p", str(NGINX_DIR), "-c", str(NGINX_DIR / "nginx.conf")],
    prepare=_edge_prepare,
    stop_signal=signal.SIGQUIT,  # graceful shutdown for nginx
    stop_timeout=10.0,
)

# --- the five Mixdown services --------------------------------------------------------------------


def _service(name: str, port: int) -> Component:
    def available() -> str | None:
        if not (REPO / "services" / name / "__main__.py").exists():
            return f"services/{name}/__main__.py does not exist yet"
        if not VENV_PYTHON.exists():
            return ".venv missing (run make venv)"
        return None

    return Component(
        name=name,
        address=f"127.0.0.1:{port}",
        probe=lambda env: probes.http_ok(f"http://127.0.0.1:{port}/readyz"),
        command=lambda env: [str(VENV_PYTHON), "-m", f"services.{name}"],
        stop_timeout=15.0,
        startup_timeout=60.0,
        is_service=True,
        available=available,
        extra_env=lambda env: {"PYTHONUNBUFFERED": "1"},
    )


SERVICES = tuple(_service(name, port) for name, port in SERVICE_PORTS.items())
INFRA = (POSTGRES, KAFKA, MINIO, EDGE, JANUS)  # the edge first: it receives Janus events
ALL = INFRA + SERVICES
BY_NAME = {component.name: component for component in ALL}
