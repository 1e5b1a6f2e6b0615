import pytest

from services.recorder.errors import MalformedPacketError
from services.recorder.rtcp import (
    KeyframeRequester,
    build_pli,
    build_sender_report,
    parse_sender_reports,
)


def test_pli_bytes() -> None:
    assert build_pli(0x11223344, 0xAABBCCDD) == bytes.fromhex("81ce000211223344aabbccdd")


def test_parse_sender_report_in_compound_packet() -> None:
    ntp = ((2_208_988_800 + 1_700_000_000) << 32) | (1 << 31)  # .5 s
    sr = build_sender_report(0xCAFE, ntp, 123456, 10, 2000)
    sdes = bytes.fromhex("81ca0003") + (0xCAFE).to_bytes(4, "big") + b"\x01\x02ab\x00\x00\x00\x00"
    (report,) = parse_sender_reports(sr + sdes)
    assert report.ssrc == 0xCAFE
    assert report.rtp_timestamp == 123456
    assert (report.packet_count, report.octet_count) == (10, 2000)
    assert report.unix_time_us == 1_700_000_000_500_000


def test_receiver_report_only_yields_nothing() -> None:
    rr = bytes.fromhex("80c90001") + (5).to_bytes(4, "big")
    assert parse_sender_reports(rr) == []


@pytest.mark.parametrize("data", [bytes.fromhex("80c80006") + bytes(8), bytes.fromhex("40c80000")])
def test_malformed_rtcp(data: bytes) -> None:
    with pytest.raises(MalformedPacketError):
        parse_sender_reports(data)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pli_until_first_keyframe_rate_limited() -> None:
    clock = FakeClock()
    req = KeyframeRequester(clock, max_keyframe_interval=10.0, retry_interval=1.0)
    assert req.should_send()
    req.sent()
    clock.now += 0.5
    assert not req.should_send()  # rate limit
    clock.now += 0.6
    assert req.should_send()
    req.sent()
    req.on_keyframe()
    clock.now += 5
    assert not req.should_send()
    assert req.plis_sent == 2


def test_pli_when_keyframes_stop_for_interval() -> None:
    clock = FakeClock()
    req = KeyframeRequester(clock, max_keyframe_interval=10.0, retry_interval=1.0)
    req.on_keyframe()
    clock.now += 9.9
    assert not req.should_send()
    clock.now += 0.2
    assert req.should_send()
    req.sent()
    clock.now += 0.5
    assert not req.should_send()
    clock.now += 0.5
    assert req.should_send()  # still no keyframe: retry
    req.on_keyframe()
    assert not req.should_send()


def test_pli_after_loss() -> None:
    clock = FakeClock()
    req = KeyframeRequester(clock, max_keyframe_interval=10.0, retry_interval=1.0)
    req.on_keyframe()
    clock.now += 2
    assert not req.should_send()
    req.on_loss()
    assert req.should_send()
