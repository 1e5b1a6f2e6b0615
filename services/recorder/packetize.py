"""RTP packetization (the sender side of ``depacketize``): VP8, H.264 (single NAL / STAP-A / FU-A), Opus.

The recorder never sends media; this exists so tests and the benchmark can play Janus's ``rtp_forward``
with real encoded streams, byte-compatible with what browsers and Janus produce.
"""

from __future__ import annotations

from services.recorder.depacketize import NAL_PPS, NAL_SPS, Codec, annexb_nal_units

DEFAULT_MTU_PAYLOAD = 1200


def vp8_payloads(frame: bytes, picture_id: int, mtu: int = DEFAULT_MTU_PAYLOAD) -> list[bytes]:
    """Split one VP8 frame into payloads with a 4-byte descriptor (X, I with a 15-bit picture id)."""
    pid = picture_id & 0x7FFF
    body = mtu - 4
    out = []
    for i in range(0, max(len(frame), 1), body):
        first = 0x10 if i == 0 else 0x00
        out.append(bytes((0x80 | first, 0x80, 0x80 | (pid >> 8), pid & 0xFF)) + frame[i : i + body])
    return out


def h264_payloads(access_unit: bytes, mtu: int = DEFAULT_MTU_PAYLOAD) -> list[bytes]:
    """Packetize an Annex-B access unit: SPS+PPS aggregated in one STAP-A, big NALs as FU-A."""
    units = annexb_nal_units(access_unit)
    out: list[bytes] = []
    params = [u for u in units if u[0] & 0x1F in (NAL_SPS, NAL_PPS)]
    if params and sum(len(u) + 2 for u in params) + 1 <= mtu:
        out.append(bytes((0x78,)) + b"".join(len(u).to_bytes(2, "big") + u for u in params))
        units = [u for u in units if u[0] & 0x1F not in (NAL_SPS, NAL_PPS)]
    for unit in units:
        if len(unit) <= mtu:
            out.append(unit)
            continue
        header, body = unit[0], unit[1:]
        step = mtu - 2
        pieces = [body[i : i + step] for i in range(0, len(body), step)]
        for k, piece in enumerate(pieces):
            fu_header = (header & 0x1F) | (0x80 if k == 0 else 0) | (0x40 if k == len(pieces) - 1 else 0)
            out.append(bytes(((header & 0xE0) | 28, fu_header)) + piece)
    return out


def payloads_for(codec: Codec, frame: bytes, index: int) -> list[bytes]:
    """The RTP payloads of frame number ``index`` (the marker bit goes on the last one)."""
    if codec is Codec.VP8:
        return vp8_payloads(frame, index)
    if codec is Codec.H264:
        return h264_payloads(frame)
    return [frame]
