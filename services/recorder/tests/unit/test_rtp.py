import pytest

from services.recorder.errors import MalformedPacketError
from services.recorder.rtp import Unwrapper, build_rtp, parse_rtp


def test_parse_roundtrip() -> None:
    data = build_rtp(97, 65535, 0xFFFFFFF0, 0x1234, b"hello", marker=True)
    p = parse_rtp(data)
    assert (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc, p.payload) == (
        97,
        True,
        65535,
        0xFFFFFFF0,
        0x1234,
        b"hello",
    )


def test_parse_csrc_extension_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 0x01, 96]) + (7).to_bytes(2, "big") + (1).to_bytes(4, "big")
    header += (9).to_bytes(4, "big") + b"CSRC"
    ext = b"\xbe\xde\x00\x01" + b"\x10\xaa\x00\x00"
    payload = b"opus!"
    padding = b"\x00\x00\x03"
    p = parse_rtp(header + ext + payload + padding)
    assert p.payload == payload
    assert p.sequence_number == 7
    assert not p.marker


@pytest.mark.parametrize(
    "data",
    [b"\x80\x60", bytes([0x40, 96]) + b"\x00" * 10, bytes([0x8F, 96]) + b"\x00" * 10],
)
def test_parse_rejects_malformed(data: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        parse_rtp(data)


def test_unwrap_sequence_across_wrap_with_reordering() -> None:
    u = Unwrapper(16)
    seqs = [65533, 65534, 0, 65535, 1, 2]
    ext = [u.unwrap(s) for s in seqs]
    base = ext[0]
    assert [e - base for e in ext] == [0, 1, 3, 2, 4, 5]


def test_unwrap_timestamp_32_bit() -> None:
    u = Unwrapper(32)
    a = u.unwrap(0xFFFFFF00)
    b = u.unwrap(0x00000100)
    assert b - a == 0x200
    # A slightly older timestamp maps below, not a full cycle ahead.
    assert u.unwrap(0xFFFFFFF0) - a == 0xF0
