"""SDP reading: m-lines, mids, msid, codecs, direction; and offered tracks from an offer."""

from __future__ import annotations

import pytest

from services.room.errors import RoomRuleError
from services.room.sdp import SdpError, parse_sdp
from services.room.tracks import OfferedTrack, offered_tracks

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendonly",
        "a=msid:stream 6c1a-mic",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sendrecv",
        "a=msid:stream 9f2e-cam",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 profile-level-id=42e01f;packetization-mode=1",
        "m=video 0 UDP/TLS/RTP/SAVPF 96",
        "a=mid:2",
        "a=rtpmap:96 VP8/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:3",
        "",
    ]
)


def test_parse_offer() -> None:
    sdp = parse_sdp(OFFER)
    assert [(m.kind, m.mid, m.port, m.direction) for m in sdp.media] == [
        ("audio", "0", 9, "sendonly"),
        ("video", "1", 9, "sendrecv"),
        ("video", "2", 0, "sendrecv"),
        ("application", "3", 9, "sendrecv"),
    ]
    audio, video, rejected, _ = sdp.media
    assert (audio.msid_stream, audio.msid_track) == ("stream", "6c1a-mic")
    assert audio.codecs[0].name == "opus"
    assert (audio.codecs[0].clock_rate, audio.codecs[0].channels) == (48000, 2)
    assert audio.codecs[0].fmtp == "minptime=10;useinbandfec=1"
    assert video.codec_names() == ("VP8", "H264")
    assert video.codecs[2].fmtp == "profile-level-id=42e01f;packetization-mode=1"
    assert audio.sends and not audio.receives
    assert video.sends and video.receives
    assert not rejected.sends
    assert sdp.by_mid("1") is video
    assert sdp.by_mid("9") is None


def test_offered_tracks_skip_rejected_and_data() -> None:
    assert offered_tracks(parse_sdp(OFFER)) == (
        OfferedTrack("0", "audio", "6c1a-mic"),
        OfferedTrack("1", "video", "9f2e-cam"),
    )


def test_session_level_direction_is_the_default() -> None:
    sdp = parse_sdp("v=0\na=recvonly\nm=audio 9 RTP/AVP 0\na=mid:a\n")
    assert sdp.media[0].direction == "recvonly"
    assert offered_tracks(sdp) == ()


def test_missing_mid_is_53300() -> None:
    with pytest.raises(RoomRuleError) as caught:
        offered_tracks(parse_sdp("v=0\nm=audio 9 RTP/AVP 0\na=sendonly\n"))
    assert caught.value.code == 53300


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "v=1\n",
        "v=0\nm=audio\n",
        "v=0\nm=audio x RTP/AVP 0\n",
        "v=0\nbogus\n",
        "v=0\nm=audio 9 RTP/AVP 0\na=rtpmap:x opus\n",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(text)
