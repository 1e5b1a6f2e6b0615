"""`devstack up|down|status|logs|env|start|stop`: the command line of the local stack."""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from . import account, edge, install, netns, processes, s3
from .commands import DevstackError, run, say
from .components import ALL, BY_NAME, INFRA, SERVICES, Component, pg_bootstrap
from .config import load_secrets, parse_env, write_env_file
from .layout import BUCKET, DEV_ACCOUNT, DEV_ENV, DEVSTACK_ENV, EDGE_PORT, LOGS, MIXDOWN_CLI, REPO, RUN, VAR

Env = dict[str, str]


def context() -> Env:
    """Secrets plus every variable of var/devstack.env (rewritten from the template each time)."""
    secrets = load_secrets()
    return {**secrets, **write_env_file(secrets)}


# Only these are inherited from the caller: a test session's own settings (uuid-named topics, other
# DSNs) must never leak into the processes of the shared stack.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME")


def process_env(component: Component, ctx: Env) -> Env:
    """The caller's basic environment, var/devstack.env, then the component's own variables."""
    base = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    file_vars = parse_env(DEVSTACK_ENV.read_text())
    return {**base, **file_vars, **component.extra_env(ctx)}


def _log_tail(name: str, lines: int = 15) -> str:
    path = processes.log_file(name)
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line for line in text)


def start(component: Component, ctx: Env) -> str:
    """Start component unless it already runs or is healthy; returns what happened."""
    if processes.running(component.name) is not None:
        return "running"
    if component.probe(ctx) is None:
        return "healthy (not started by devstack)"
    unavailable = component.available()
    if unavailable is not None:
        return f"missing: {unavailable}"
    component.prepare(ctx)
    user = component.user()
    processes.spawn(
        component.name, component.command(ctx), env=process_env(component, ctx), cwd=REPO, user=user
    )
    return "started"


def wait_healthy(components: Sequence[Component], ctx: Env) -> None:
    """Poll probes until all are healthy; fail fast when a process dies, or at the deadline."""
    pending = {c.name: c for c in components}
    began = time.monotonic()
    while pending:
        for name, component in list(pending.items()):
            if component.probe(ctx) is None:
                say(f"{name} healthy after {time.monotonic() - began:.1f}s")
                del pending[name]
                continue
            log = processes.log_file(name)
            if processes.running(name) is None:
                raise DevstackError(f"{name} exited during startup; see {log}\n{_log_tail(name)}")
            if time.monotonic() - began > component.startup_timeout:
                problem = component.probe(ctx)
                raise DevstackError(
                    f"{name} not healthy after {component.startup_timeout:.0f}s ({problem}); see {log}"
                )
        time.sleep(0.3)


def _apt_then_kafka() -> None:
    install.ensure_apt_packages()  # may install Maven and Java, which the Kafka fetch needs
    install.ensure_kafka()


def ensure_installed() -> None:
    # The MinIO build (Go, minutes on a cold cache) runs while apt and Maven work.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: list[Future[object]] = [pool.submit(_apt_then_kafka), pool.submit(install.ensure_minio)]
        for future in futures:
            future.result()


def migrate(ctx: Env) -> None:
    if not account.cli_has(ctx, "migrate"):
        say("`mixdown migrate` not available yet: skipped")
        return
    run(
        [str(MIXDOWN_CLI), "migrate"],
        env={**os.environ, **parse_env(DEVSTACK_ENV.read_text())},
        cwd=str(REPO),
        timeout=300,
    )


def cmd_up(_: argparse.Namespace) -> int:
    began = time.monotonic()
    ensure_installed()
    ctx = context()
    netns.ensure()
    started = {c.name: start(c, ctx) for c in INFRA}
    wait_healthy([c for c in INFRA if not started[c.name].startswith("missing")], ctx)
    pg_bootstrap()
    if s3.ensure_bucket(
        "127.0.0.1:9000", BUCKET, ctx["S3_ACCESS_KEY"], ctx["S3_SECRET_KEY"], ctx["S3_REGION"]
    ):
        say(f"created bucket {BUCKET}")
    # Migrations are idempotent but cost a second: run them when a service starts or the account is new.
    if any(processes.running(c.name) is None for c in SERVICES) or not DEV_ACCOUNT.exists():
        migrate(ctx)
    for component in SERVICES:
        started[component.name] = start(component, ctx)
    wait_healthy([c for c in SERVICES if not started[c.name].startswith("missing")], ctx)
    dev = account.ensure_dev_account(ctx)
    for name, what in started.items():
        if what not in ("running",):
            say(f"{name}: {what}")
    say(f"up in {time.monotonic() - began:.1f}s")
    print(
        f"Mixdown API: http://127.0.0.1:{EDGE_PORT}  (from the media netns: http://10.77.0.254:{EDGE_PORT})"
    )
    if "TWILIO_ACCOUNT_SID" in dev:
        print(f"Account SID: {dev['TWILIO_ACCOUNT_SID']}   API key: {dev['TWILIO_API_KEY']}")
        # The secrets go to a person's terminal, never into CI logs or redirected output.
        if sys.stdout.isatty() and os.environ.get("CI", "").lower() not in ("1", "true"):
            print(f"Auth token:  {dev['TWILIO_AUTH_TOKEN']}   API secret: {dev['TWILIO_API_SECRET']}")
        else:
            print("Auth token and API secret: in the file below (not printed where output is logged)")
    print(f'Credentials and settings: {DEV_ENV} and {DEVSTACK_ENV}  (eval "$({sys.argv[0]} env)")')
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    for component in reversed(ALL):
        if processes.stop(component.name, sig=component.stop_signal, timeout=component.stop_timeout):
            say(f"stopped {component.name}")
    if netns.remove_if_created():
        say("removed netns mixdown")
    return 0


def _status_rows(ctx: Env) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for component in ALL:
        record = processes.running(component.name)
        problem = component.probe(ctx)
        unavailable = component.available()
        if record is not None:
            state = "running"
        elif problem is None:
            state = "foreign"
        elif unavailable is not None:
            state = "missing"
        else:
            state = "stopped"
        health = "healthy" if problem is None else ("-" if state == "missing" else "unhealthy")
        rows.append((component.name, str(record.pid) if record else "-", state, health, component.address))
    ns_problem = netns.problem()
    rows.append(
        (
            "netns",
            "-",
            "present" if ns_problem is None else "absent",
            "healthy" if ns_problem is None else "unhealthy",
            "mxd0 10.77.0.254 <-> mxd1 10.77.0.1",
        )
    )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    ctx = context() if DEVSTACK_ENV.exists() else {"JANUS_URL": "http://10.77.0.1:8088/janus"}
    rows = _status_rows(ctx)
    if not args.quiet:
        header = ("NAME", "PID", "STATE", "HEALTH", "ADDRESS")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        print(f"logs: {LOGS}/<name>.log")
    if not args.check:
        return 0
    bad = [r[0] for r in rows if r[3] == "unhealthy" or (args.strict and r[2] == "missing")]
    if bad:
        if not args.quiet:
            print(f"not healthy: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    names = args.names or [c.name for c in ALL]
    paths = [str(processes.log_file(n)) for n in names if processes.log_file(n).exists()]
    if not paths:
        print(f"no logs in {LOGS}", file=sys.stderr)
        return 1
    argv = ["tail", "-n", str(args.lines), *(["-F"] if not args.no_follow else []), *paths]
    os.execvp("tail", argv)  # noqa: S606, S607 - replaces this process with tail(1)


def cmd_env(_: argparse.Namespace) -> int:
    for path in (DEVSTACK_ENV, DEV_ENV):
        if path.exists():
            for key, value in parse_env(path.read_text()).items():
                print(f"export {key}='{value}'")
    return 0


def cmd_render_docker_edge(_: argparse.Namespace) -> int:
    header = "# Generated by `devstack render-docker-edge` from deploy/devstack/templates/nginx.conf.\n"
    edge.DOCKER_EDGE_CONF.write_text(header + edge.render_edge(edge.docker_values()))
    print(edge.DOCKER_EDGE_CONF)
    return 0


def _component(name: str) -> Component:
    if name not in BY_NAME:
        raise DevstackError(f"unknown component {name!r}; one of: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def cmd_start(args: argparse.Namespace) -> int:
    ctx = context()
    netns.ensure()
    for name in args.names:
        component = _component(name)
        what = start(component, ctx)
        say(f"{name}: {what}")
        if not what.startswith("missing"):
            wait_healthy([component], ctx)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    for name in args.names:
        component = _component(name)
        stopped = processes.stop(name, sig=component.stop_signal, timeout=component.stop_timeout)
        say(f"{name}: {'stopped' if stopped else 'was not running'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description="The Mixdown local stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="install what is missing, start everything, wait until healthy").set_defaults(
        func=cmd_up
    )
    sub.add_parser("down", help="stop everything the devstack started; data in var/ is kept").set_defaults(
        func=cmd_down
    )
    status = sub.add_parser("status", help="table of processes and health")
    status.add_argument(
        "--check", action="store_true", help="exit 1 unless every present component is healthy"
    )
    status.add_argument("--strict", action="store_true", help="with --check: a missing service also fails")
    status.add_argument("--quiet", "-q", action="store_true")
    status.set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="tail all logs, or the named ones")
    logs.add_argument("names", nargs="*")
    logs.add_argument("-n", "--lines", type=int, default=20)
    logs.add_argument("--no-follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    sub.add_parser("env", help="print export lines for var/devstack.env and var/dev.env").set_defaults(
        func=cmd_env
    )
    sub.add_parser("render-docker-edge", help="regenerate deploy/docker/edge.conf").set_defaults(
        func=cmd_render_docker_edge
    )
    for name, func in (("start", cmd_start), ("stop", cmd_stop)):
        single = sub.add_parser(name, help=f"{name} single components: {', '.join(BY_NAME)}")
        single.add_argument("names", nargs="+")
        single.set_defaults(func=func)
    args = parser.parse_args(argv)
    VAR.mkdir(parents=True, exist_ok=True)
    try:
        if args.command in ("up", "down", "start", "stop"):
            # Several test sessions may call `up` at once: one mutation of the stack at a time.
            RUN.mkdir(parents=True, exist_ok=True)
            with (RUN / "devstack.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                return int(args.func(args))
        return int(args.func(args))
    except DevstackError as error:
        print(f"devstack: error: {error}", file=sys.stderr)
        return 1
