"""Where everything lives: the repository's var/ tree, the download caches, pinned versions, ports."""

from __future__ import annotations

import os
from pathlib import Path

DEVSTACK_DIR = Path(__file__).resolve().parent.parent
REPO = DEVSTACK_DIR.parent.parent
TEMPLATES = DEVSTACK_DIR / "templates"
ENV_TEMPLATE = DEVSTACK_DIR / "env.template"
KAFKA_POM = DEVSTACK_DIR / "kafka" / "pom.xml"

VAR = Path(os.environ.get("MIXDOWN_VAR_DIR", str(REPO / "var")))
RUN = VAR / "run"
LOGS = VAR / "log"
DEVSTACK_ENV = VAR / "devstack.env"
DEV_ENV = VAR / "dev.env"
SECRETS = VAR / "secrets.json"
DEV_ACCOUNT = VAR / "dev-account.json"

CACHE = Path(os.environ.get("MIXDOWN_CACHE_DIR", str(Path.home() / ".cache" / "mixdown")))
CACHE_BIN = CACHE / "bin"

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
MIXDOWN_CLI = REPO / ".venv" / "bin" / "mixdown"

# Pinned third-party versions. Kafka: newest 4.x whose artifacts are all on Maven Central (4.4.0's
# kafka-tools-api jar is not published there). MinIO: the module proxy's build of the MinIO repository.
KAFKA_VERSION = "4.3.1"
KAFKA_HOME = CACHE / f"kafka-{KAFKA_VERSION}"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_BIN = CACHE_BIN / "minio"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 5433
PG_DATA = VAR / "pg"
PG_SOCKET_DIR = RUN / "pg"

NETNS = "mixdown"
HOST_IF = "mxd0"
NS_IF = "mxd1"
HOST_ADDR = "10.77.0.254"
NS_ADDR = "10.77.0.1"

EDGE_PORT = 8080
SERVICE_PORTS = {"room": 8101, "recorder": 8102, "compositor": 8103, "hook": 8104, "notifier": 8105}
BUCKET = "mixdown-media"

APT_PACKAGES = (
    "postgresql",
    "janus",
    "nginx-light",
    "ffmpeg",
    "iproute2",
    "chromium",
    "chromium-driver",
    "curl",
)
