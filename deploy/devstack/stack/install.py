"""Installing what the devstack runs: Debian packages, Kafka jars (Maven), MinIO (go install).

Every step checks first and returns quickly when already installed. Downloads are cached outside the
repository: ~/.m2 (Maven), the Go module and build caches, ~/.cache/mixdown (binaries, Kafka jars).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .commands import DevstackError, as_root, run, say
from .layout import (
    APT_PACKAGES,
    CACHE,
    CACHE_BIN,
    KAFKA_HOME,
    KAFKA_POM,
    KAFKA_VERSION,
    MINIO_BIN,
    MINIO_MODULE,
    MINIO_VERSION,
)

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
# Debian packages we install ship services that would otherwise start with their default configs.
_SYSTEM_SERVICES = ("postgresql", "nginx", "janus")


# Tools the install itself needs, and the Debian package that provides each when it is not on PATH.
_TOOL_PACKAGES = {"mvn": "maven", "java": "openjdk-17-jre-headless"}


def missing_packages() -> list[str]:
    missing = [package for tool, package in _TOOL_PACKAGES.items() if shutil.which(tool) is None]
    for package in APT_PACKAGES:
        result = subprocess.run(  # noqa: S603
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        if result.stdout.strip() != "installed":
            missing.append(package)
    return missing


def ensure_apt_packages() -> None:
    """apt-get install the missing packages, with no service allowed to auto-start."""
    missing = missing_packages()
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}
    created_policy = False
    if not POLICY_RC_D.exists():
        # policy-rc.d exit 101 = "action forbidden": invoke-rc.d starts nothing during the install.
        run(
            as_root(
                ["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {POLICY_RC_D} && chmod 755 {POLICY_RC_D}"]
            )
        )
        created_policy = True
    try:
        lock = ["-o", "DPkg::Lock::Timeout=900"]
        run(as_root(["apt-get", *lock, "update", "-q"]), env=env, timeout=1800)
        run(
            as_root(["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *missing]),
            env=env,
            timeout=3600,
        )
    finally:
        if created_policy:
            run(as_root(["rm", "-f", str(POLICY_RC_D)]), check=False)
    _stop_system_services()
    say(f"Debian packages installed in {time.monotonic() - started:.0f}s")


def _stop_system_services() -> None:
    """Belt and braces: if a package's service did start anyway, stop it (we run our own instances)."""
    if shutil.which("systemctl") and Path("/run/systemd/system").exists():
        for service in _SYSTEM_SERVICES:
            run(as_root(["systemctl", "disable", "--now", service]), check=False, quiet=True)


def ensure_kafka() -> Path:
    """Kafka broker jars in ~/.cache/mixdown/kafka-<version>/libs, resolved by Maven."""
    stamp = KAFKA_HOME / ".complete"
    libs = KAFKA_HOME / "libs"
    if stamp.exists() and any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        return libs
    if shutil.which("mvn") is None:
        raise DevstackError("Maven (mvn) is required to fetch Kafka; apt-get install maven")
    say(f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central")
    started = time.monotonic()
    if libs.exists():
        shutil.rmtree(libs)
    run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(KAFKA_POM),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        timeout=1800,
    )
    stamp.write_text(KAFKA_VERSION + "\n")
    say(f"Kafka jars ready in {time.monotonic() - started:.0f}s")
    return libs


def _minio_built_version() -> str | None:
    if not MINIO_BIN.exists():
        return None
    result = subprocess.run(  # noqa: S603
        ["go", "version", "-m", str(MINIO_BIN)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "mod" and parts[1] == MINIO_MODULE:
            return parts[2]
    return None


def ensure_minio() -> Path:
    """MinIO server built from the Go module proxy into ~/.cache/mixdown/bin (GOFLAGS=-mod=mod)."""
    if _minio_built_version() == MINIO_VERSION:
        return MINIO_BIN
    if shutil.which("go") is None:
        raise DevstackError("Go is required to build MinIO")
    say(f"building MinIO {MINIO_VERSION} with go install (a few minutes on a cold cache)")
    started = time.monotonic()
    CACHE_BIN.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOBIN": str(CACHE_BIN),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    run(["go", "install", f"{MINIO_MODULE}@{MINIO_VERSION}"], env=env, timeout=3600)
    elapsed = time.monotonic() - started
    (CACHE / "minio-build-seconds").write_text(f"{elapsed:.0f}\n")
    say(f"MinIO built in {elapsed:.0f}s")
    return MINIO_BIN
