"""The edge's nginx configuration, rendered from templates/nginx.conf for the devstack and for compose."""

from __future__ import annotations

from .config import render
from .layout import EDGE_PORT, HOST_ADDR, REPO, SERVICE_PORTS, TEMPLATES, VAR

DOCKER_EDGE_CONF = REPO / "deploy" / "docker" / "edge.conf"
_TEMP_MODULES = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _temp_paths(tmp_dir: str, modules: tuple[str, ...]) -> str:
    return "\n".join(f"\t{module}_temp_path {tmp_dir}/{module};" for module in modules)


def devstack_values(temp_modules: tuple[str, ...]) -> dict[str, str]:
    values = {
        "PID_FILE": str(VAR / "nginx" / "nginx.pid"),
        "TEMP_PATHS": _temp_paths(str(VAR / "nginx" / "tmp"), temp_modules),
        "EDGE_LISTEN": f"\t\tlisten 127.0.0.1:{EDGE_PORT};\n\t\tlisten {HOST_ADDR}:{EDGE_PORT};",
        "EVENTS_LISTEN": f"\t\tlisten {HOST_ADDR}:8099;",
        "EVENTS_ALLOW": "10.77.0.0/24",
    }
    values.update({f"{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()})
    return values


def docker_values() -> dict[str, str]:
    values = {
        # Paths inside the nginx container, which has a private /tmp.
        "PID_FILE": "/tmp/edge.nginx.pid",  # noqa: S108
        "TEMP_PATHS": _temp_paths("/tmp", _TEMP_MODULES),  # noqa: S108
        "EDGE_LISTEN": f"\t\tlisten {EDGE_PORT};",
        "EVENTS_LISTEN": "\t\tlisten 8099;",
        # Janus reaches the sink over the compose network (Docker's private ranges).
        "EVENTS_ALLOW": "172.16.0.0/12",
    }
    values.update({f"{name.upper()}_ADDR": f"{name}:{port}" for name, port in SERVICE_PORTS.items()})
    return values


def render_edge(values: dict[str, str]) -> str:
    return render((TEMPLATES / "nginx.conf").read_text(), values)


def temp_modules(nginx_configure: str) -> tuple[str, ...]:
    """Temp-path directives nginx accepts: uwsgi/scgi only when compiled in (nginx-light drops some)."""
    return tuple(m for m in _TEMP_MODULES if f"--without-http_{m}_module" not in nginx_configure)
