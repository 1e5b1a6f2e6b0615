"""A private Janus for integration tests: its own network namespace `mxdtest-<hex>` and veth pair.

Layout (mirrors the devstack's media namespace on 10.78.<n>.0/24 instead of 10.77.0.0/24):
host side `mxt<hex>h` = 10.78.n.254 (RTP forward target, event sink), netns side `mxt<hex>n` =
10.78.n.1 (Janus HTTP API and ICE) plus 10.78.n.2 (the test WebRTC peer: Janus only answers ICE on
the interface it gathered on). Everything is removed by `stop()`.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
_DISABLED_PLUGINS = ",".join(
    f"libjanus_{name}.so"
    for name in (
        [
            "audiobridge",
            "duktape",
            "echotest",
            "lua",
            "nosip",
            "recordplay",
            "sip",
            "streaming",
            "textroom",
            "videocall",
            "voicemail",
        ]
    )
)


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True)


@dataclass
class ScratchJanus:
    netns: str
    host_if: str
    ns_if: str
    subnet: int
    workdir: Path
    admin_key: str
    sink_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def janus_ip(self) -> str:
        return f"10.78.{self.subnet}.1"

    @property
    def peer_ip(self) -> str:
        return f"10.78.{self.subnet}.2"

    @property
    def host_ip(self) -> str:
        return f"10.78.{self.subnet}.254"

    @property
    def url(self) -> str:
        return f"http://{self.janus_ip}:8088/janus"

    @classmethod
    def create(cls, sink_port: int) -> ScratchJanus:
        tag = secrets.token_hex(3)
        used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
        subnet = next(n for n in range(10, 250) if f"10.78.{n}." not in used)
        janus = cls(
            netns=f"mxdtest-{tag}",
            host_if=f"mxt{tag}h",
            ns_if=f"mxt{tag}n",
            subnet=subnet,
            workdir=Path(tempfile.mkdtemp(prefix="mxdtest-janus-")),
            admin_key=secrets.token_hex(8),
            sink_port=sink_port,
        )
        try:
            janus._network()
        except BaseException:
            janus.stop()
            raise
        return janus

    def _network(self) -> None:
        _run("ip", "netns", "add", self.netns)
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        _run("ip", "link", "set", self.ns_if, "netns", self.netns)
        _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        for address in (self.janus_ip, self.peer_ip):
            _run("ip", "-n", self.netns, "addr", "add", f"{address}/24", "dev", self.ns_if)
        _run("ip", "-n", self.netns, "link", "set", self.ns_if, "up")
        _run("ip", "-n", self.netns, "link", "set", "lo", "up")

    def _write_config(self) -> Path:
        conf = self.workdir / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "janus.jcfg").write_text(
            "general: {\n"
            f'  configs_folder = "{conf}"\n'
            f'  plugins_folder = "{JANUS_LIB}/plugins"\n'
            f'  transports_folder = "{JANUS_LIB}/transports"\n'
            f'  events_folder = "{JANUS_LIB}/events"\n'
            f'  loggers_folder = "{JANUS_LIB}/loggers"\n'
            "  debug_level = 4\n"
            f'  interface = "{self.janus_ip}"\n'
            '  server_name = "mxdtest-janus"\n'
            "  session_timeout = 60\n"
            "}\n"
            'media: { rtp_port_range = "41000-41200" }\n'
            f'nat: {{ ice_enforce_list = "{self.ns_if}"\n  ignore_mdns = true\n'
            "  ice_keepalive_conncheck = true }\n"  # as the devstack: ICE consent checks
            f'plugins: {{ disable = "{_DISABLED_PLUGINS}" }}\n'
            'transports: { disable = "libjanus_websockets.so,libjanus_mqtt.so,libjanus_nanomsg.so,'
            'libjanus_pfunix.so,libjanus_rabbitmq.so" }\n'
            'loggers: { disable = "libjanus_jsonlog.so" }\n'
            'events: { broadcast = true\n  disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,'
            'libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_wsevh.so" }\n'
        )
        (conf / "janus.transport.http.jcfg").write_text(
            f'general: {{ json = "plain"\n  base_path = "/janus"\n  http = true\n  port = 8088\n'
            f'  ip = "{self.janus_ip}"\n  https = false }}\n'
            "admin: { admin_http = false }\ncors: { }\n"
        )
        (conf / "janus.plugin.videoroom.jcfg").write_text(
            f'general: {{ admin_key = "{self.admin_key}"\n  lock_rtp_forward = true\n  string_ids = true }}\n'
        )
        (conf / "janus.eventhandler.sampleevh.jcfg").write_text(
            "general: { enabled = true\n"
            '  events = "sessions,handles,plugins,webrtc,media"\n'
            "  grouping = false\n"
            '  json = "plain"\n'
            f'  backend = "http://{self.host_ip}:{self.sink_port}/janus-events" }}\n'
        )
        return conf

    def start(self) -> None:
        """Start Janus inside the netns and wait until its HTTP API answers (at most 20 s)."""
        conf = self._write_config()
        command = [
            "ip",
            "netns",
            "exec",
            self.netns,
            "janus",
            "-C",
            str(conf / "janus.jcfg"),
            "-F",
            str(conf),
            "-o",
        ]
        with (self.workdir / "janus.log").open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("janus exited early:\n" + self.log_tail())
            try:
                if httpx.get(f"{self.url}/info", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("janus did not answer in 20 s:\n" + self.log_tail())

    def restart(self) -> None:
        """Stop and start Janus again (all sessions are lost), keeping the network."""
        self._stop_process()
        self.start()

    def log_tail(self, chars: int = 3000) -> str:
        path = self.workdir / "janus.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """Stop Janus (the process we started) and delete the netns and veth pair."""
        self._stop_process()
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
