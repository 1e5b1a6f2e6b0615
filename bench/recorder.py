"""Recorder benchmark: N synthetic participants (VP8 ~1.5 Mbit/s + Opus) replayed over UDP on 127.0.0.1 into
ONE recorder process (TrackRecorder → chunks on local disk), stepping N up.

Three processes: this driver, the recorder (``--role recorder``) and a paced sender (``--role sender``) that
replays pre-encoded, pre-packetized media with correct RTP timing and a random phase per participant. For
each N it reports packets sent/received, sequence-number losses, kernel UdpRcvbufErrors (from
/proc/net/snmp) and the recorder's CPU (utime+stime from /proc/<pid>/stat) per participant.

    python -m bench recorder            # default steps, ~2-3 min
    python -m bench recorder --quick    # smoke run, ~30 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FPS = 30
LOOP_FRAMES = 60  # a 2 s loop with one keyframe
VIDEO_PT, AUDIO_PT = 97, 111
PORT_FIRST, PORT_LAST = 50000, 59999
MAX_DRAIN_MS = 1000  # more backlog than this after the sender stops means the recorder did not keep up
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "mixdown-bench-recorder-media-v1.bin"


# --- media: encode once, cache -----------------------------------------------------------------------------


def _load_media(bitrate: int) -> tuple[list[bytes], list[bytes]]:
    """(VP8 frames of a 2 s 640x480 noisy loop at ``bitrate``, 100 Opus 20 ms packets), cached on disk."""
    cache = CACHE.with_suffix(f".{bitrate}.bin")
    if cache.exists():
        data = cache.read_bytes()
        frames: list[list[bytes]] = [[], []]
        pos = 0
        while pos < len(data):
            kind, size = struct.unpack_from("!BI", data, pos)
            frames[kind].append(data[pos + 5 : pos + 5 + size])
            pos += 5 + size
        return frames[0], frames[1]
    from services.recorder.depacketize import Codec
    from services.recorder.tests.media.synthetic import encode_tone, encode_video

    video = [
        f.data
        for f in encode_video(Codec.VP8, LOOP_FRAMES, width=640, height=480, bitrate=bitrate, noise=True)
    ]
    audio = encode_tone(2.0)
    blob = b"".join(struct.pack("!BI", 0, len(v)) + v for v in video)
    blob += b"".join(struct.pack("!BI", 1, len(a)) + a for a in audio)
    cache.write_bytes(blob)
    return video, audio


# --- the recorder process -----------------------------------------------------------------------------------


async def _serve_recorder(participants: int, root: str) -> None:
    from services.recorder.depacketize import Codec
    from services.recorder.directory_store import DirectoryObjectStore
    from services.recorder.receiver import PortAllocator
    from services.recorder.track_recorder import TrackRecorder

    store = DirectoryObjectStore(root, fsync=False)
    ports = PortAllocator("127.0.0.1", PORT_FIRST, PORT_LAST)
    recorders: list[TrackRecorder] = []
    for i in range(participants):
        for codec in (Codec.VP8, Codec.OPUS):
            (sock,) = ports.allocate(1)
            recorders.append(TrackRecorder(codec, store, f"bench/p{i}/{codec.value}", sock))
    for rec in recorders:
        await rec.start()
    print(json.dumps([r.rtp_port for r in recorders]), flush=True)
    loop = asyncio.get_running_loop()
    expected = int((await loop.run_in_executor(None, sys.stdin.readline)).split()[1])
    # Drain: wait until every sent datagram was processed, or until progress stops (they were dropped).
    began = last_change = loop.time()
    last = -1
    while True:
        received = sum(r.packets for r in recorders)
        if received >= expected:
            break
        if received != last:
            last, last_change = received, loop.time()
        elif loop.time() - last_change > 2.0:
            break
        await asyncio.sleep(0.02)
    print(json.dumps({"drain_ms": int((loop.time() - began) * 1000)}), flush=True)
    totals: dict[str, int] = {}
    for rec in recorders:
        stats = await rec.stop()
        for key in (
            "packets",
            "bytes",
            "lost",
            "reordered",
            "late",
            "frames",
            "keyframes",
            "chunks",
            "malformed",
        ):
            totals[key] = totals.get(key, 0) + int(getattr(stats, key))
    print(json.dumps(totals), flush=True)


# --- the sender process -------------------------------------------------------------------------------------


def _schedule(
    video: list[bytes], audio: list[bytes], ports: list[int]
) -> list[tuple[float, int, int, bool, bytes]]:
    """One 2 s loop of (time, port, loop-relative RTP ts, marker, payload) for every track, by time."""
    from services.recorder.packetize import vp8_payloads

    rng = random.Random(42)
    events: list[tuple[float, int, int, bool, bytes]] = []
    loop_s = LOOP_FRAMES / FPS
    for p in range(0, len(ports), 2):
        phase = rng.random() * loop_s
        for n, frame in enumerate(video):
            payloads = vp8_payloads(frame, n)
            t = (phase + n / FPS) % loop_s
            for k, payload in enumerate(payloads):
                events.append((t, ports[p], n * 3000, k == len(payloads) - 1, payload))
        for n, packet in enumerate(audio):
            events.append(((phase + n * 0.02) % loop_s, ports[p + 1], n * 960, True, packet))
    events.sort(key=lambda e: e[0])
    return events


def _run_sender(ports: list[int], seconds: float, bitrate: int) -> dict[str, int]:
    video, audio = _load_media(bitrate)
    events = _schedule(video, audio, ports)
    # Per track: packets per loop (for continuous sequence numbers across loops).
    per_loop: dict[int, int] = {}
    index_in_loop: list[int] = []
    for _, port, _, _, _ in events:
        index_in_loop.append(per_loop.get(port, 0))
        per_loop[port] = per_loop.get(port, 0) + 1
    ssrc = {port: i + 1 for i, port in enumerate(ports)}
    loop_ticks = {port: (LOOP_FRAMES * 3000 if i % 2 == 0 else 100 * 960) for i, port in enumerate(ports)}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    header = struct.Struct("!BBHII")
    loop_s = LOOP_FRAMES / FPS
    start = time.monotonic() + 0.2
    sent = 0
    late_max = 0.0
    loop_no = 0
    while loop_no * loop_s < seconds:
        base = start + loop_no * loop_s
        for (t, port, ts, marker, payload), idx in zip(events, index_in_loop, strict=True):
            due = base + t
            now = time.monotonic()
            if due > now + 0.002:
                time.sleep(due - now)
            else:
                late_max = max(late_max, now - due)
            seq = (loop_no * per_loop[port] + idx) & 0xFFFF
            rtp_ts = (loop_no * loop_ticks[port] + ts) & 0xFFFFFFFF
            pt = VIDEO_PT if loop_ticks[port] == LOOP_FRAMES * 3000 else AUDIO_PT
            b1 = (0x80 if marker else 0) | pt
            sock.sendto(header.pack(0x80, b1, seq, rtp_ts, ssrc[port]) + payload, ("127.0.0.1", port))
            sent += 1
        loop_no += 1
    return {"sent": sent, "sender_late_max_ms": int(late_max * 1000)}


# --- the driver ---------------------------------------------------------------------------------------------


def _rcvbuf_errors() -> int:
    lines = Path("/proc/net/snmp").read_text().splitlines()
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    return int(udp[1][udp[0].index("RcvbufErrors")])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _step(participants: int, seconds: float, bitrate: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mixdown-bench-rec-") as root:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        recorder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.recorder",
                "--role",
                "recorder",
                "-n",
                str(participants),
                "--root",
                root,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        assert recorder.stdin is not None and recorder.stdout is not None
        ports = json.loads(recorder.stdout.readline())
        ports_file = Path(root) / "ports.json"
        ports_file.write_text(json.dumps(ports))
        errors_before = _rcvbuf_errors()
        cpu0 = _cpu_seconds(recorder.pid)
        sender = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.recorder",
                "--role",
                "sender",
                "--ports-file",
                str(ports_file),
                "--seconds",
                str(seconds),
                "--bitrate",
                str(bitrate),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        sender_out, _ = sender.communicate(timeout=seconds + 120)
        sent = json.loads(sender_out)
        recorder.stdin.write(f"drain {sent['sent']}\n")
        recorder.stdin.flush()
        drain = json.loads(recorder.stdout.readline())
        cpu1 = _cpu_seconds(recorder.pid)
        totals = json.loads(recorder.stdout.readline())
        recorder.wait(60)
        # CPU-seconds per second of media: independent of how long a loaded machine took to drain.
        cpu = (cpu1 - cpu0) / seconds
        return {
            "participants": participants,
            "tracks": participants * 2,
            "sent": sent["sent"],
            "received": totals["packets"],
            "lost_seq": totals["lost"],
            "rcvbuf_errors": _rcvbuf_errors() - errors_before,
            "pkt_per_s": round(sent["sent"] / seconds),
            "mbit_per_s": round(totals["bytes"] * 8 / seconds / 1e6, 1),
            "recorder_cpu_pct": round(cpu * 100, 1),
            "cpu_pct_per_participant": round(cpu * 100 / participants, 3),
            "frames": totals["frames"],
            "chunks": totals["chunks"],
            "sender_late_max_ms": sent["sender_late_max_ms"],
            "drain_ms": drain["drain_ms"],
            "loadavg_1m": round(os.getloadavg()[0], 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench recorder", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--steps", default="25,50,100,150,200", help="participant counts to try, ascending")
    parser.add_argument("--seconds", type=float, default=16.0, help="media seconds per step")
    parser.add_argument("--bitrate", type=int, default=1_500_000, help="VP8 target bitrate (bit/s)")
    parser.add_argument(
        "--role", choices=["driver", "recorder", "sender"], default="driver", help=argparse.SUPPRESS
    )
    parser.add_argument("-n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--root", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ports-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role == "recorder":
        asyncio.run(_serve_recorder(args.n, args.root))
        return 0
    if args.role == "sender":
        ports = json.loads(Path(args.ports_file).read_text())
        print(json.dumps(_run_sender(ports, args.seconds, args.bitrate)), flush=True)
        return 0

    steps = [10, 40] if args.quick else [int(s) for s in args.steps.split(",")]
    seconds = 6.0 if args.quick else args.seconds
    _load_media(args.bitrate)  # encode once before timing anything
    lossless: dict[str, Any] | None = None  # largest N without any lost packet
    realtime: dict[str, Any] | None = None  # largest N processed in real time (no backlog), steps in order
    realtime_ok = True
    for n in steps:
        result = _step(n, seconds, args.bitrate)
        print(json.dumps(result), flush=True)
        if result["lost_seq"] or result["rcvbuf_errors"] or result["received"] != result["sent"]:
            break
        lossless = result
        if realtime_ok and result["drain_ms"] < MAX_DRAIN_MS:
            realtime = result
        else:
            realtime_ok = False
    if lossless is None:
        print(json.dumps({"summary": "packet loss at every step"}))
        return 1
    per_participant = lossless["cpu_pct_per_participant"]
    print(
        json.dumps(
            {
                "summary": "largest N with zero packet loss",
                "participants": lossless["participants"],
                "realtime_participants": realtime["participants"] if realtime else None,
                "recorder_cpu_pct": lossless["recorder_cpu_pct"],
                "cpu_pct_per_participant": per_participant,
                "participants_per_core_extrapolated": round(100 / per_participant)
                if per_participant
                else None,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
