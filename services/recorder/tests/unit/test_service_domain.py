"""Recording decisions: rules, precedence, toggling → recording intervals; offsets and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.events.models import RecordingRule
from libs.events.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from libs.rooms.rules import Rule, TrackKind, from_event_rules
from services.recorder.domain import (
    MediaOutcome,
    OpenCapture,
    Recording,
    RoomView,
    TrackView,
    complete,
    completed_event,
    fail,
    failed_event,
    finalized_event,
    new_recording,
    offset_at,
    plan,
    relative_offsets,
    started_event,
    twilio_duration,
    wants_recording,
)

ACCOUNT = AccountSid("AC" + "a" * 32)
ROOM = RoomSid("RM" + "b" * 32)
ALICE = ParticipantSid("PA" + "1" * 32)
BOB = ParticipantSid("PA" + "2" * 32)
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALL = (Rule(type="include", all=True),)


def room(rules: tuple[Rule, ...] = ALL, *, ended: bool = False) -> RoomView:
    return RoomView(ROOM, ACCOUNT, "standup", "group", "https://cb.example/x", "POST", rules, ended)


def track(
    n: int, kind: TrackKind, codec: str | None, *, who: ParticipantSid = ALICE, name: str = ""
) -> TrackView:
    identity = "alice" if who == ALICE else "bob"
    return TrackView(
        TrackSid("MT" + f"{n:032x}"), ROOM, who, identity, name or f"{kind}{n}", kind, codec, "123", str(n)
    )


MIC = track(1, "audio", "OPUS")
CAM = track(2, "video", "VP8")
BOB_CAM = track(3, "video", "H264", who=BOB)
DATA = track(4, "data", None)


def started(p: object) -> set[TrackSid]:
    assert hasattr(p, "start")
    return {t.track_sid for t in p.start}


def test_all_rule_records_every_media_track_but_never_data() -> None:
    decided = plan(room(), [MIC, CAM, BOB_CAM, DATA], [])
    assert started(decided) == {MIC.track_sid, CAM.track_sid, BOB_CAM.track_sid}
    assert decided.stop == ()


def test_no_rules_records_nothing() -> None:
    assert plan(room(()), [MIC, CAM], []).start == ()


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([{"type": "include", "all": True}, {"type": "exclude", "kind": "video"}], {"MIC"}),
        ([{"type": "include", "kind": "audio"}], {"MIC"}),
        ([{"type": "include", "publisher": "bob"}], {"BOB_CAM"}),
        (
            [{"type": "include", "publisher": str(BOB)}, {"type": "include", "kind": "audio"}],
            {"MIC", "BOB_CAM"},
        ),
        (
            [{"type": "include", "all": True}, {"type": "exclude", "publisher": "alice", "kind": "video"}],
            {"MIC", "BOB_CAM"},
        ),
        ([{"type": "include", "track": "video2"}], {"CAM"}),
        ([{"type": "exclude", "all": True}], set()),
    ],
)
def test_precedence(rules: list[dict[str, object]], expected: set[str]) -> None:
    names = {MIC.track_sid: "MIC", CAM.track_sid: "CAM", BOB_CAM.track_sid: "BOB_CAM"}
    parsed = from_event_rules([RecordingRule.model_validate(r) for r in rules])
    decided = plan(room(parsed), [MIC, CAM, BOB_CAM, DATA], [])
    assert {names[s] for s in started(decided)} == expected


def test_unsupported_codec_or_missing_janus_ids_are_not_recorded() -> None:
    pcmu = track(5, "audio", "PCMU")
    no_mid = TrackView(CAM.track_sid, ROOM, ALICE, "alice", "cam", "video", "VP8", "123", None)
    assert not wants_recording(room(), pcmu)
    assert not wants_recording(room(), no_mid)
    assert not wants_recording(room(ended=True), CAM)


def test_toggling_rules_gives_two_intervals_per_track() -> None:
    """include → exclude → include: start, stop, start again (a second Recording)."""
    tracks = [MIC, CAM]
    opened: list[OpenCapture] = []
    recordings: list[tuple[TrackSid, int]] = []
    timeline = [(0, ALL), (5, (Rule(type="exclude", all=True),)), (9, ALL)]
    for n, (t, rules) in enumerate(timeline):
        decided = plan(room(rules), tracks, opened)
        opened = [c for c in opened if c.sid not in decided.stop]
        for tr in decided.start:
            sid = RecordingSid("RT" + f"{n:02x}" + tr.track_sid[-30:])
            opened.append(OpenCapture(sid, tr.track_sid))
            recordings.append((tr.track_sid, t))
    assert sorted(recordings) == sorted(
        [(MIC.track_sid, 0), (CAM.track_sid, 0), (MIC.track_sid, 9), (CAM.track_sid, 9)]
    )
    assert len(opened) == 2


def test_plan_stops_removed_tracks_and_duplicates() -> None:
    removed = TrackView(**{**CAM.__dict__, "published": False})
    a = OpenCapture(RecordingSid("RT" + "1" * 32), MIC.track_sid)
    b = OpenCapture(RecordingSid("RT" + "2" * 32), MIC.track_sid)
    c = OpenCapture(RecordingSid("RT" + "3" * 32), CAM.track_sid)
    decided = plan(room(), [MIC, removed], [a, b, c])
    assert decided.start == ()
    assert set(decided.stop) == {b.sid, c.sid}
    assert set(plan(room(ended=True), [MIC], [a]).stop) == {a.sid}


def test_offsets_are_epoch_ms_of_first_media_and_align_by_difference() -> None:
    rec = new_recording(room(), CAM, RecordingSid("RT" + "4" * 32), T0)
    assert rec.offset_ms == offset_at(T0) == 1_795_262_400_000
    assert rec.container == "mkv" and rec.kind == "video" and rec.status == "processing"
    first_media_us = int((T0 + timedelta(seconds=5, milliseconds=250)).timestamp() * 1e6)
    done = complete(rec, MediaOutcome("k/media.mkv", 12_400, 999, first_media_us), T0 + timedelta(seconds=20))
    assert done.offset_ms - offset_at(T0) == 5250
    assert relative_offsets([done.offset_ms, offset_at(T0) + 10]) == [5240, 0]
    assert done.duration_s == 12 and done.size_bytes == 999 and done.status == "completed"


@pytest.mark.parametrize(("ms", "s"), [(0, 1), (200, 1), (1499, 1), (1500, 2), (12_400, 12), (59_999, 60)])
def test_twilio_duration_rounds_and_reports_at_least_one(ms: int, s: int) -> None:
    assert twilio_duration(ms) == s


def test_events_carry_callback_and_grouping() -> None:
    rec = new_recording(room(), MIC, RecordingSid("RT" + "5" * 32), T0)
    ev = started_event(rec)
    assert ev.status_callback == "https://cb.example/x" and ev.container == "mka" and ev.codec == "OPUS"
    assert ev.grouping_sids == {"room_sid": ROOM, "participant_sid": ALICE}
    done = complete(rec, MediaOutcome("k", 3000, 10, int(T0.timestamp() * 1e6)), T0)
    ce = completed_event(done)
    assert ce.media_uri == f"/v1/Recordings/{rec.sid}/Media" and ce.duration_s == 3 and ce.object_key == "k"
    fe = failed_event(fail(rec, T0), 53100, "none")
    assert fe.error_code == 53100
    fin = finalized_event(room(ended=True), [done, fail(rec, T0)], T0)
    assert fin.completed_recording_sids == [rec.sid] and fin.failed_recording_sids == [rec.sid]


def test_track_name_defaults_to_sid() -> None:
    nameless = TrackView(CAM.track_sid, ROOM, ALICE, "alice", "", "video", "vp8", "1", "0")
    rec: Recording = new_recording(room(), nameless, RecordingSid("RT" + "6" * 32), T0)
    assert rec.track_name == str(CAM.track_sid) and rec.codec == "VP8"
