"""Track naming and per-room track limits."""

from __future__ import annotations

import itertools

import pytest

from libs.events.sids import ParticipantSid, TrackSid
from services.room.errors import RoomRuleError
from services.room.tracks import (
    OfferedTrack,
    check_publishable,
    find_track,
    name_tracks,
    publish,
    set_enabled,
)

PA = ParticipantSid("PA" + "a" * 32)
MIC = OfferedTrack(mid="0", kind="audio", msid_track="3f1c0d7e-mic")
CAM = OfferedTrack(mid="1", kind="video", msid_track="9a2b-cam")
SCREEN = OfferedTrack(mid="2", kind="video", msid_track=None)


def counter() -> itertools.count[int]:
    return itertools.count(1)


@pytest.mark.parametrize(
    ("offered", "query", "existing", "names"),
    [
        ((MIC, CAM), {}, (), ("3f1c0d7e-mic", "9a2b-cam")),
        ((MIC, CAM), {"audio_track_name": "microphone"}, (), ("microphone", "9a2b-cam")),
        ((MIC, CAM, SCREEN), {"video_track_name": "camera"}, (), ("3f1c0d7e-mic", "camera", "generated-1")),
        ((OfferedTrack("0", "audio", "-"),), {}, (), ("generated-1",)),
        ((MIC,), {}, ("9a2b-cam",), ("3f1c0d7e-mic",)),
    ],
)
def test_naming_precedence(
    offered: tuple[OfferedTrack, ...],
    query: dict[str, str],
    existing: tuple[str, ...],
    names: tuple[str, ...],
) -> None:
    numbers = counter()
    named = name_tracks(offered, query, existing, lambda: f"generated-{next(numbers)}")
    assert tuple(name for _, name in named) == names
    assert tuple(t for t, _ in named) == offered


@pytest.mark.parametrize(
    ("offered", "query", "existing", "code"),
    [
        ((MIC,), {"audio_track_name": ""}, (), 53301),
        ((MIC,), {"audio_track_name": "n" * 129}, (), 53302),
        ((MIC,), {"audio_track_name": "bad\nname"}, (), 53303),
        ((MIC,), {}, ("3f1c0d7e-mic",), 53304),
        ((MIC, CAM), {"audio_track_name": "same", "video_track_name": "same"}, (), 53304),
    ],
)
def test_naming_errors(
    offered: tuple[OfferedTrack, ...], query: dict[str, str], existing: tuple[str, ...], code: int
) -> None:
    with pytest.raises(RoomRuleError) as caught:
        name_tracks(offered, query, existing, lambda: "unused")
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("offered", "audio_only", "published", "cap", "code"),
    [
        ((CAM,), True, 0, 170, 53125),
        ((MIC, CAM), False, 169, 170, 53203),
        ((MIC,), False, 16, 16, 53203),
        ((MIC, CAM), False, 168, 170, None),
        ((MIC, CAM), False, 10_000, 0, None),
        ((MIC,), True, 0, 170, None),
    ],
)
def test_room_limits(
    offered: tuple[OfferedTrack, ...], audio_only: bool, published: int, cap: int, code: int | None
) -> None:
    if code is None:
        check_publishable(
            offered, audio_only=audio_only, room_published=published, max_concurrent_published_tracks=cap
        )
        return
    with pytest.raises(RoomRuleError) as caught:
        check_publishable(
            offered, audio_only=audio_only, room_published=published, max_concurrent_published_tracks=cap
        )
    assert caught.value.code == code


def test_publish_find_and_toggle() -> None:
    named = name_tracks((MIC, CAM), {}, (), lambda: "x")
    sids = iter([TrackSid("MT" + "1" * 32), TrackSid("MT" + "2" * 32)])
    tracks = publish(PA, named, lambda: next(sids))
    assert [(t.name, t.kind, t.mid, t.enabled) for t in tracks] == [
        ("3f1c0d7e-mic", "audio", "0", True),
        ("9a2b-cam", "video", "1", True),
    ]
    assert find_track(tracks, "9a2b-cam") == tracks[1]
    assert find_track(tracks, "MT" + "1" * 32) == tracks[0]
    assert find_track(tracks, "nope") is None
    assert set_enabled(tracks[0], True) is None
    muted = set_enabled(tracks[0], False)
    assert muted is not None
    assert muted.enabled is False
