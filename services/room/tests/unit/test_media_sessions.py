"""JanusMedia.renegotiate: which streams a WHEP session adds and removes, subscribe rules on the new streams,
the offer generation (ETag), and no Janus call when nothing changed. Janus handle and store are fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from libs.events.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from libs.janus.handles import StreamInfo, StreamToggle, SubscribeStream, SubscriptionUpdate
from services.room.media_sessions import JanusMedia, WhepSession
from services.room.records import ParticipantRecord, TrackRecord
from services.room.rules import parse_subscribe_rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT = AccountSid("AC" + "b" * 32)
ROOM = RoomSid.new()


def participant(identity: str, **changes: object) -> ParticipantRecord:
    record = ParticipantRecord(
        sid=ParticipantSid.new(),
        room_sid=ROOM,
        account_sid=ACCOUNT,
        identity=identity,
        status="connected",
        date_created=T0,
        date_updated=T0,
        start_time=T0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]  # test builder: changes are record fields


def track(owner: ParticipantRecord, kind: str, mid: str) -> TrackRecord:
    return TrackRecord(
        sid=TrackSid.new(),
        room_sid=ROOM,
        participant_sid=owner.sid,
        name=f"{owner.identity}-{kind}",
        kind="audio" if kind == "audio" else "video",
        mid=mid,
        codec=None,
        enabled=True,
        published=True,
        date_created=T0,
        date_updated=T0,
    )


@dataclass
class FakeHandle:
    """A subscriber handle that numbers new streams after the existing ones, as Janus does."""

    streams: list[StreamInfo]
    updates: list[tuple[list[SubscribeStream], list[str]]] = field(default_factory=list)
    toggles: list[list[StreamToggle]] = field(default_factory=list)
    session_id: int = 1
    handle_id: int = 2

    async def update(
        self, subscribe: Sequence[SubscribeStream] = (), unsubscribe_mids: Sequence[str] = ()
    ) -> SubscriptionUpdate:
        self.updates.append((list(subscribe), list(unsubscribe_mids)))
        kept = [s if s.mid not in unsubscribe_mids else StreamInfo(s.type, s.mid) for s in self.streams]
        added = [
            StreamInfo("video", str(len(kept) + n), feed_id=s.feed, feed_mid=s.mid)
            for n, s in enumerate(subscribe)
        ]
        self.streams = kept + added
        return SubscriptionUpdate("v=0 renegotiated", tuple(self.streams))

    async def configure(self, toggles: Sequence[StreamToggle]) -> None:
        self.toggles.append(list(toggles))


@dataclass
class FakeStore:
    tracks: list[TrackRecord]
    people: dict[str, ParticipantRecord]

    async def room_tracks(self, room_sid: RoomSid) -> list[TrackRecord]:
        return list(self.tracks)

    async def participants_by_sid(self, sids: Sequence[str]) -> dict[str, ParticipantRecord]:
        return {s: self.people[s] for s in sids if s in self.people}


def viewer_of(handle: FakeHandle, owner: ParticipantRecord, tracks: list[TrackRecord]) -> WhepSession:
    session = WhepSession("w1", ROOM, owner.sid, owner.identity, handle, True)  # type: ignore[arg-type]  # fake handle
    session.streams = tuple(handle.streams)
    session.track_sids = frozenset(t.sid for t in tracks)
    return session


async def test_new_tracks_are_subscribed_gone_ones_unsubscribed_and_rules_pause_new_streams() -> None:
    alice, bob, carol = participant("alice"), participant("bob"), participant("carol")
    carol = replace(
        carol,
        subscribe_rules=parse_subscribe_rules(
            '[{"type":"include","all":true},{"type":"exclude","publisher":"bob"}]'
        ),
    )
    a_video = track(alice, "video", "1")
    handle = FakeHandle([StreamInfo("video", "0", feed_id=alice.sid, feed_mid="1")])
    store = FakeStore([a_video], {p.sid: p for p in (alice, bob, carol)})
    media = JanusMedia(None, store)  # type: ignore[arg-type]  # renegotiation needs no client
    viewer = viewer_of(handle, carol, [a_video])
    assert viewer.etag == '"w1.0"'

    # Up to date: no Janus request, no new offer.
    assert await media.renegotiate(viewer, carol, store.tracks) is None
    assert handle.updates == [] and viewer.generation == 0

    b_audio, b_video = track(bob, "audio", "0"), track(bob, "video", "1")
    store.tracks = [a_video, b_audio, b_video]
    assert media.viewer_is_stale(viewer, store.tracks)
    offer = await media.renegotiate(viewer, carol, store.tracks)
    assert offer == "v=0 renegotiated" and viewer.etag == '"w1.1"' and not viewer.started
    assert handle.updates[-1] == ([SubscribeStream(bob.sid, "0"), SubscribeStream(bob.sid, "1")], [])
    assert not media.viewer_is_stale(viewer, store.tracks)
    # Carol's rules exclude bob: his new streams are paused, alice's keeps flowing.
    assert handle.toggles[-1] == [StreamToggle("0", True), StreamToggle("1", False), StreamToggle("2", False)]

    store.tracks = [a_video]  # bob left
    offer = await media.renegotiate(viewer, carol, store.tracks)
    assert offer is not None and viewer.etag == '"w1.2"'
    assert handle.updates[-1] == ([], ["1", "2"])
    assert [s.feed_id for s in viewer.streams] == [alice.sid, None, None]
    assert viewer.track_sids == frozenset({a_video.sid})


async def test_the_viewers_own_tracks_are_never_subscribed() -> None:
    alice, bob = participant("alice"), participant("bob")
    a_video, own = track(alice, "video", "1"), track(bob, "video", "1")
    handle = FakeHandle([StreamInfo("video", "0", feed_id=alice.sid, feed_mid="1")])
    store = FakeStore([a_video, own], {p.sid: p for p in (alice, bob)})
    media = JanusMedia(None, store)  # type: ignore[arg-type]  # renegotiation needs no client
    viewer = viewer_of(handle, bob, [a_video])  # bob publishes and views as the same participant
    assert not media.viewer_is_stale(viewer, store.tracks)
    assert await media.renegotiate(viewer, bob, store.tracks) is None
    assert handle.updates == []


async def test_a_feed_janus_cannot_serve_yet_waits_for_a_later_renegotiation() -> None:
    alice, bob, carol = participant("alice"), participant("bob"), participant("carol")
    a_video, b_video = track(alice, "video", "1"), track(bob, "video", "1")
    handle = FakeHandle([StreamInfo("video", "0", feed_id=alice.sid, feed_mid="1")])
    store = FakeStore([a_video, b_video], {p.sid: p for p in (alice, bob, carol)})
    media = JanusMedia(None, store)  # type: ignore[arg-type]  # renegotiation needs no client
    viewer = viewer_of(handle, carol, [a_video])
    # Bob's WHIP answer is out but his PeerConnection is not up: Janus lists only alice as a publisher.
    assert await media.renegotiate(viewer, carol, store.tracks, frozenset({alice.sid})) is None
    assert handle.updates == [] and media.viewer_is_stale(viewer, store.tracks)
    offer = await media.renegotiate(viewer, carol, store.tracks, frozenset({alice.sid, bob.sid}))
    assert offer is not None and handle.updates[-1] == ([SubscribeStream(bob.sid, "1")], [])
    assert not media.viewer_is_stale(viewer, store.tracks)
