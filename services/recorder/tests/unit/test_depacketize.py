import pytest

from services.recorder.depacketize import (
    Codec,
    FrameAssembler,
    annexb_nal_units,
    h264_depayload,
    h264_sps_resolution,
    opus_packet_samples,
    vp8_depayload,
    vp8_descriptor_size,
    vp8_keyframe_info,
)
from services.recorder.errors import MalformedPacketError
from services.recorder.jitter import Loss
from services.recorder.rtp import RtpPacket

SPS_320x240 = bytes.fromhex("6742c00dd90141fa10000003001000000303c0f142a480")
SPS_1920x1080_HIGH = bytes.fromhex("67640028acd940780227e584000003000400000300f03c60c658")
SPS_642x362_HIGH = bytes.fromhex("6764001eacd940a42fe22484000003000400000300f03c58b658")
PPS = bytes.fromhex("68ce3c80")


def vp8_key_frame(width: int, height: int, size: int = 40) -> bytes:
    """A VP8 keyframe header (frame tag with P=0, start code, dimensions) plus filler."""
    tag = bytes([0x10, 0x02, 0x00])  # bit 0 = 0: keyframe
    dims = (width & 0x3FFF).to_bytes(2, "little") + (height & 0x3FFF).to_bytes(2, "little")
    return tag + b"\x9d\x01\x2a" + dims + bytes(range(size))


def vp8_inter_frame(size: int = 30) -> bytes:
    return bytes([0x31, 0x01, 0x00]) + bytes(size)


def vp8_packets(frame: bytes, pieces: int, picture_id: int) -> list[bytes]:
    step = -(-len(frame) // pieces)
    out = []
    for i in range(pieces):
        start_bit = 0x10 if i == 0 else 0
        desc = bytes([0x80 | start_bit, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF])
        out.append(desc + frame[i * step : (i + 1) * step])
    return out


def rtp(seq: int, ts: int, payload: bytes, marker: bool) -> RtpPacket:
    return RtpPacket(97, marker, seq, ts, 42, payload)


def test_vp8_descriptor_sizes() -> None:
    assert vp8_descriptor_size(b"\x10\xaa") == 1
    assert vp8_descriptor_size(b"\x90\x80\x05\xaa") == 3  # 7-bit picture id
    assert vp8_descriptor_size(b"\x90\x80\x85\x05\xaa") == 4  # 15-bit picture id
    assert vp8_descriptor_size(b"\x90\xf0\x85\x05\x01\x02\xaa") == 6  # + TL0PICIDX + TID/KEYIDX
    with pytest.raises(MalformedPacketError):
        vp8_descriptor_size(b"\x90\x80\x85")


def test_vp8_depayload_and_keyframe_resolution() -> None:
    frame = vp8_key_frame(640, 480)
    assert vp8_depayload(vp8_packets(frame, 3, 300)) == frame
    assert vp8_keyframe_info(frame) == (True, 640, 480)
    assert vp8_keyframe_info(vp8_inter_frame())[0] is False


def test_vp8_assembly_waits_for_keyframe_and_notices_resolution() -> None:
    asm = FrameAssembler(Codec.VP8)
    frames = []
    seq = 0
    for n, frame in enumerate([vp8_inter_frame(), vp8_key_frame(320, 240), vp8_inter_frame()]):
        parts = vp8_packets(frame, 2, n)
        for i, part in enumerate(parts):
            frames += asm.push(rtp(seq, n * 3000, part, i == len(parts) - 1))
            seq += 1
    assert [f.keyframe for f in frames] == [True, False]
    assert frames[0].data == vp8_key_frame(320, 240)
    assert (asm.width, asm.height) == (320, 240)
    assert asm.stats.dropped_frames == 1
    # A new keyframe size is reported.
    for i, part in enumerate(vp8_packets(vp8_key_frame(640, 360), 2, 9)):
        frames += asm.push(rtp(seq + i, 9000, part, i == 1))
    assert (frames[-1].width, frames[-1].height) == (640, 360)


def test_vp8_loss_inside_frame_drops_until_next_keyframe() -> None:
    asm = FrameAssembler(Codec.VP8)
    out = []
    key = vp8_packets(vp8_key_frame(320, 240), 2, 1)
    out += asm.push(rtp(0, 0, key[0], False))
    out += asm.push(rtp(1, 0, key[1], True))
    inter = vp8_packets(vp8_inter_frame(), 3, 2)
    out += asm.push(rtp(2, 3000, inter[0], False))
    out += asm.push(Loss(1))
    out += asm.push(rtp(4, 3000, inter[2], True))
    nxt = vp8_packets(vp8_inter_frame(), 1, 3)
    out += asm.push(rtp(5, 6000, nxt[0], True))  # decodable bits, but references a broken frame
    assert len(out) == 1
    assert asm.waiting_for_keyframe
    key2 = vp8_packets(vp8_key_frame(320, 240), 1, 4)
    out += asm.push(rtp(6, 9000, key2[0], True))
    assert [f.timestamp for f in out] == [0, 9000]
    assert asm.stats.dropped_frames == 2


def test_vp8_frame_missing_its_first_packet_is_dropped() -> None:
    asm = FrameAssembler(Codec.VP8)
    key = vp8_packets(vp8_key_frame(320, 240), 3, 1)
    asm.push(Loss(1))
    assert asm.push(rtp(1, 0, key[1], False)) == []
    assert asm.push(rtp(2, 0, key[2], True)) == []
    assert asm.stats.dropped_frames == 1


def test_missing_marker_then_new_timestamp_drops_frame() -> None:
    asm = FrameAssembler(Codec.VP8)
    key = vp8_packets(vp8_key_frame(320, 240), 2, 1)
    asm.push(rtp(0, 0, key[0], False))
    key2 = vp8_packets(vp8_key_frame(320, 240), 1, 2)
    out = asm.push(rtp(1, 3000, key2[0], True))
    assert [f.timestamp for f in out] == [3000]


def fu_a(nal: bytes, size: int) -> list[bytes]:
    header, body = nal[0], nal[1:]
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for i, piece in enumerate(pieces):
        fu_header = (header & 0x1F) | (0x80 if i == 0 else 0) | (0x40 if i == len(pieces) - 1 else 0)
        out.append(bytes([(header & 0xE0) | 28, fu_header]) + piece)
    return out


def stap_a(*nals: bytes) -> bytes:
    return b"\x78" + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def test_h264_stap_a_and_fu_a_to_annexb() -> None:
    idr = bytes([0x65]) + bytes(range(200))
    payloads = [stap_a(SPS_320x240, PPS), *fu_a(idr, 64)]
    data = h264_depayload(payloads)
    assert data == b"\x00\x00\x00\x01" + SPS_320x240 + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + idr
    assert annexb_nal_units(data) == [SPS_320x240, PPS, idr]


def test_h264_sps_resolution_with_cropping_and_high_profile() -> None:
    assert h264_sps_resolution(SPS_320x240) == (320, 240)
    assert h264_sps_resolution(SPS_1920x1080_HIGH) == (1920, 1080)
    assert h264_sps_resolution(SPS_642x362_HIGH) == (642, 362)


def test_h264_assembly_keyframe_gets_parameter_sets() -> None:
    asm = FrameAssembler(Codec.H264)
    idr = bytes([0x65, 0x88]) + bytes(100)
    out = asm.push(rtp(0, 0, stap_a(SPS_320x240, PPS), False))
    for i, p in enumerate(fu_a(idr, 40)):
        out += asm.push(rtp(1 + i, 0, p, i == 2))
    assert len(out) == 1 and out[0].keyframe
    assert (out[0].width, out[0].height) == (320, 240)
    # A later IDR sent without SPS/PPS is made self-contained.
    out = asm.push(rtp(10, 3000, idr, True))
    assert out[0].keyframe
    assert annexb_nal_units(out[0].data) == [SPS_320x240, PPS, idr]
    # A non-IDR slice is not a keyframe.
    out = asm.push(rtp(11, 6000, bytes([0x41, 0x9A]) + bytes(10), True))
    assert not out[0].keyframe


def test_h264_fu_a_continuation_cannot_start_a_frame() -> None:
    asm = FrameAssembler(Codec.H264)
    parts = fu_a(bytes([0x65]) + bytes(100), 40)
    assert asm.push(rtp(0, 0, parts[1], False)) == []
    assert asm.push(rtp(1, 0, parts[2], True)) == []
    assert asm.stats.dropped_frames == 1


def test_opus_packets_are_frames_and_losses_are_gaps() -> None:
    asm = FrameAssembler(Codec.OPUS)
    out = asm.push(RtpPacket(111, True, 1, 960, 7, b"\xf8abc"))
    out += asm.push(Loss(2))
    out += asm.push(RtpPacket(111, False, 4, 3840, 7, b"\xf8def"))
    assert [(f.timestamp, f.data, f.keyframe) for f in out] == [
        (960, b"\xf8abc", True),
        (3840, b"\xf8def", True),
    ]


@pytest.mark.parametrize(
    ("packet", "samples"),
    [
        (bytes([0xF8]), 960),  # CELT 20 ms, one frame
        (bytes([0xF9]), 1920),  # two frames
        (bytes([0x08]), 960),  # SILK 20 ms
        (bytes([0x18]), 2880),  # SILK 60 ms
        (bytes([0xE3, 0x03]), 360),  # CELT 2.5 ms x3 (code 3)
    ],
)
def test_opus_packet_duration(packet: bytes, samples: int) -> None:
    assert opus_packet_samples(packet) == samples


def test_padding_only_packets_are_ignored_without_breaking_frames() -> None:
    asm = FrameAssembler(Codec.VP8)
    key = vp8_packets(vp8_key_frame(320, 240), 2, 1)
    out = asm.push(rtp(0, 0, key[0], False))
    out += asm.push(rtp(1, 0, b"", False))  # probe padding in the middle of a frame
    out += asm.push(rtp(2, 0, key[1], True))
    out += asm.push(rtp(3, 0, b"", False))  # and after it, with the old timestamp
    inter = vp8_packets(vp8_inter_frame(), 1, 2)
    out += asm.push(rtp(4, 3000, inter[0], True))
    assert [f.timestamp for f in out] == [0, 3000]
    assert asm.stats.dropped_frames == 0
