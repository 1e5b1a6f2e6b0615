"""Depayloading (VP8, H.264, Opus) and frame assembly from in-order RTP packets.

A frame is the run of packets sharing one RTP timestamp, ended by the marker bit (video) or a single packet
(audio). Any loss inside or right before a video frame corrupts it; after a video loss the assembler drops
frames until the next keyframe so the recording never contains undecodable references. Keyframes and
resolutions are detected from the bitstream (VP8 P bit and keyframe header; H.264 IDR NAL and SPS).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.recorder.errors import MalformedPacketError
from services.recorder.jitter import Loss
from services.recorder.rtp import RtpPacket

ANNEXB_START = b"\x00\x00\x00\x01"


class Codec(StrEnum):
    """Codecs the recorder stores; values are Twilio's ``codec`` spellings."""

    VP8 = "VP8"
    H264 = "H264"
    OPUS = "OPUS"

    @property
    def is_video(self) -> bool:
        return self is not Codec.OPUS

    @property
    def clock_rate(self) -> int:
        return 48000 if self is Codec.OPUS else 90000


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit: ``timestamp`` is the RTP timestamp (32 bit, not unwrapped)."""

    timestamp: int
    data: bytes
    keyframe: bool
    width: int | None = None
    height: int | None = None


# --- VP8 (RFC 7741) ---------------------------------------------------------------------------------------


def vp8_descriptor_size(payload: bytes) -> int:
    """Length of the VP8 payload descriptor at the start of ``payload``."""
    if not payload:
        raise MalformedPacketError("empty vp8 payload")
    size = 1
    if payload[0] & 0x80:  # X: extension byte present
        if len(payload) < 2:
            raise MalformedPacketError("vp8 descriptor truncated")
        ext = payload[1]
        size = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= size:
                raise MalformedPacketError("vp8 descriptor truncated")
            size += 2 if payload[size] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            size += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            size += 1
    if size >= len(payload):
        raise MalformedPacketError("vp8 packet carries no data")
    return size


def vp8_is_frame_start(payload: bytes) -> bool:
    """True if this packet starts partition 0 of a frame (S bit set and PID 0)."""
    return bool(payload) and (payload[0] & 0x10) != 0 and (payload[0] & 0x07) == 0


def vp8_depayload(payloads: list[bytes]) -> bytes:
    """Concatenate the VP8 data of one frame's packets (descriptors removed)."""
    return b"".join(p[vp8_descriptor_size(p) :] for p in payloads)


def vp8_keyframe_info(frame: bytes) -> tuple[bool, int | None, int | None]:
    """(is keyframe, width, height) from the VP8 frame tag and keyframe header (RFC 6386 §9.1)."""
    if len(frame) < 3 or frame[0] & 0x01:
        return False, None, None
    if len(frame) >= 10 and frame[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(frame[6:8], "little") & 0x3FFF
        height = int.from_bytes(frame[8:10], "little") & 0x3FFF
        return True, width, height
    return True, None, None


# --- H.264 (RFC 6184) -------------------------------------------------------------------------------------

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_STAP_A = 24
NAL_FU_A = 28


def h264_is_frame_start(payload: bytes) -> bool:
    """False only for an FU-A continuation fragment (a frame cannot start mid-NAL)."""
    if not payload:
        return False
    if payload[0] & 0x1F == NAL_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80)
    return True


def h264_depayload(payloads: list[bytes]) -> bytes:
    """Turn one frame's RTP payloads (single NAL, STAP-A, FU-A) into an Annex-B access unit."""
    out = bytearray()
    for p in payloads:
        if not p:
            raise MalformedPacketError("empty h264 payload")
        nal_type = p[0] & 0x1F
        if nal_type == NAL_STAP_A:
            pos = 1
            while pos + 2 <= len(p):
                size = int.from_bytes(p[pos : pos + 2], "big")
                pos += 2
                if size == 0 or pos + size > len(p):
                    raise MalformedPacketError("stap-a aggregation unit truncated")
                out += ANNEXB_START
                out += p[pos : pos + size]
                pos += size
        elif nal_type == NAL_FU_A:
            if len(p) < 2:
                raise MalformedPacketError("fu-a header truncated")
            if p[1] & 0x80:  # start: rebuild the NAL header from indicator + FU header
                out += ANNEXB_START
                out.append((p[0] & 0xE0) | (p[1] & 0x1F))
            elif not out:
                raise MalformedPacketError("fu-a continuation without a start")
            out += p[2:]
        elif 1 <= nal_type <= 23:
            out += ANNEXB_START
            out += p
        else:
            raise MalformedPacketError("unsupported h264 packetization")
    return bytes(out)


def annexb_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units (start codes removed)."""
    units: list[bytes] = []
    starts: list[int] = []
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0:
            break
        starts.append(i + 3)
        i += 3
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        # A 4-byte start code leaves one trailing zero on the previous unit.
        while end > start and data[end - 1] == 0 and k + 1 < len(starts):
            end -= 1
        if end > start:
            units.append(data[start:end])
    return units


class _BitReader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._pos >> 3
        if byte >= len(self._data):
            raise MalformedPacketError("sps truncated")
        value = (self._data[byte] >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise MalformedPacketError("exp-golomb code too long")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _unescape_rbsp(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def h264_sps_resolution(sps_nal: bytes) -> tuple[int, int]:
    """Picture size (width, height) in pixels, after cropping, from an SPS NAL unit (header byte included)."""
    r = _BitReader(_unescape_rbsp(sps_nal[1:]))
    profile_idc = r.bits(8)
    r.bits(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.bit()
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    size = 16 if i < 6 else 64
                    last = nxt = 8
                    for _ in range(size):
                        if nxt != 0:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt if nxt != 0 else last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        if chroma_array_type == 0:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 1 if chroma_array_type == 3 else 2
            sub_h = 2 if chroma_array_type == 1 else 1
            crop_x, crop_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    return width, height


# --- Opus (RFC 7587) --------------------------------------------------------------------------------------


def opus_packet_samples(packet: bytes, rate: int = 48000) -> int:
    """Duration of one Opus packet in samples at ``rate`` (from the TOC byte, RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame_us = (10_000, 20_000, 40_000, 60_000)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        frame_us = (10_000, 20_000)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame_us = (2_500, 5_000, 10_000, 20_000)[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 0
    return frames * frame_us * rate // 1_000_000


# --- frame assembly ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class AssemblyStats:
    frames: int = 0
    keyframes: int = 0
    dropped_frames: int = 0
    malformed: int = 0


class FrameAssembler:
    """Turns in-order packets and loss markers from a ReorderBuffer into complete, decodable frames."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.stats = AssemblyStats()
        self.width: int | None = None
        self.height: int | None = None
        self._payloads: list[bytes] = []
        self._timestamp: int | None = None
        self._corrupt = False
        # Video waits for a keyframe at the start and after every loss.
        self._need_keyframe = codec.is_video
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._need_keyframe

    def push(self, item: RtpPacket | Loss) -> list[Frame]:
        """Feed one packet or loss marker; return the frames completed by it."""
        if isinstance(item, Loss):
            if self.codec.is_video:
                # Lost packets belong to the frame in progress, or to the next frame whose start is then
                # missing (caught by the frame-start check); either way references are broken.
                if self._payloads:
                    self._corrupt = True
                self._need_keyframe = True
            return []
        if not item.payload:
            # Padding-only packets (bandwidth probing) carry no media; their sequence number was consumed
            # by the reorder buffer, so skipping them here is not a loss.
            return []
        if self.codec is Codec.OPUS:
            self.stats.frames += 1
            return [Frame(item.timestamp, item.payload, True)]
        out: list[Frame] = []
        if self._timestamp is not None and item.timestamp != self._timestamp:
            # The previous frame's marker packet never came: only a loss explains it, so it is corrupt.
            self._corrupt = True
            self._finish(out)
        if self._timestamp is None:
            self._timestamp = item.timestamp
            if not self._is_frame_start(item.payload):
                self._corrupt = True
        self._payloads.append(item.payload)
        if item.marker:
            self._finish(out)
        return out

    def flush(self) -> list[Frame]:
        """End of stream: an unfinished frame is incomplete and dropped."""
        out: list[Frame] = []
        if self._payloads:
            self._corrupt = True
            self._finish(out)
        return out

    def _is_frame_start(self, payload: bytes) -> bool:
        if self.codec is Codec.VP8:
            return vp8_is_frame_start(payload)
        return h264_is_frame_start(payload)

    def _finish(self, out: list[Frame]) -> None:
        payloads, timestamp, corrupt = self._payloads, self._timestamp, self._corrupt
        self._payloads, self._timestamp, self._corrupt = [], None, False
        if timestamp is None or not payloads:
            return
        if corrupt:
            self.stats.dropped_frames += 1
            self._need_keyframe = True
            return
        try:
            frame = self._build(timestamp, payloads)
        except MalformedPacketError:
            self.stats.malformed += 1
            self.stats.dropped_frames += 1
            self._need_keyframe = True
            return
        if self._need_keyframe:
            if not frame.keyframe:
                self.stats.dropped_frames += 1
                return
            self._need_keyframe = False
        self.stats.frames += 1
        if frame.keyframe:
            self.stats.keyframes += 1
        out.append(frame)

    def _build(self, timestamp: int, payloads: list[bytes]) -> Frame:
        if self.codec is Codec.VP8:
            data = vp8_depayload(payloads)
            keyframe, width, height = vp8_keyframe_info(data)
        else:
            data, keyframe, width, height = self._build_h264(payloads)
        if width and height:
            self.width, self.height = width, height
        return Frame(timestamp, data, keyframe, width, height)

    def _build_h264(self, payloads: list[bytes]) -> tuple[bytes, bool, int | None, int | None]:
        data = h264_depayload(payloads)
        units = annexb_nal_units(data)
        types = {u[0] & 0x1F for u in units}
        width = height = None
        for unit in units:
            kind = unit[0] & 0x1F
            if kind == NAL_SPS:
                self._sps = unit
                width, height = h264_sps_resolution(unit)
            elif kind == NAL_PPS:
                self._pps = unit
        keyframe = NAL_IDR in types
        if keyframe and not (NAL_SPS in types and NAL_PPS in types):
            # Make every IDR self-contained so any chunk (and the muxer's avcC) has its parameter sets.
            if self._sps is None or self._pps is None:
                raise MalformedPacketError("h264 idr without any parameter sets")
            data = ANNEXB_START + self._sps + ANNEXB_START + self._pps + data
            width, height = h264_sps_resolution(self._sps)
        return data, keyframe, width, height
