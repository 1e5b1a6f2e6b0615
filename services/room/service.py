"""Room orchestration: load a room under lock, decide with the pure lifecycle, persist state + events in one
transaction, then drive the media side (Janus) through the `MediaEffects` port after the commit.

Every entry point (REST, WHIP/WHEP, Janus events, timers) changes rooms through `RoomService`, so the per-room
sequence numbers of callbacks stay gap-free and ordered, and duplicate signals are no-ops.
Track order around a departure: a leaving participant's tracks are removed (track-removed) before its
participant-disconnected, and every track before room-ended, as Twilio reports them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from libs.events import models as ev
from libs.events.base import Event
from libs.events.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from services.room import lifecycle, room_events
from services.room.domain import RoomSpec, room_not_found
from services.room.errors import RoomRuleError, invalid
from services.room.records import (
    ParticipantRecord,
    RoomRecord,
    TrackRecord,
    deadline_of,
    room_state,
)
from services.room.rules import Rule, TrackKind, include_all, is_subscribed
from services.room.store import RoomStore, RoomTx

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class MediaEffects(Protocol):
    """What the media side does after a committed change (Janus in production, a fake in tests)."""

    async def room_opened(self, room: RoomRecord) -> None: ...

    async def room_ended(self, room: RoomRecord) -> None: ...

    async def participants_left(
        self, room: RoomRecord, sids: Sequence[ParticipantSid], *, kick: bool
    ) -> None: ...

    async def subscribe_rules_changed(self, room: RoomRecord, participant: ParticipantRecord) -> None: ...


@dataclass(frozen=True)
class NewTrack:
    """A track Janus accepted for a publisher."""

    name: str
    kind: TrackKind
    mid: str
    codec: str | None


@dataclass
class _Work:
    """What one locked transaction accumulates."""

    room: RoomRecord
    state: lifecycle.RoomState
    events: list[Event]
    left: list[ParticipantSid]
    kick: bool = False


def _not_in_progress() -> RoomRuleError:
    return invalid(53118, "Room is no longer in progress")


class RoomService:
    def __init__(
        self,
        store: RoomStore,
        media: MediaEffects,
        clock: Clock,
        janus_secret: Callable[[RoomSid], str],
    ) -> None:
        """``janus_secret`` gives a room's Janus secret; production derives it from the Janus admin key
        (libs.rooms.janus_secret) so the recorder can derive it too for ``rtp_forward``."""
        self.store = store
        self.media = media
        self._now = clock
        self._janus_secret = janus_secret

    # ------------------------------------------------------------------ rooms

    async def create_room(
        self, account_sid: AccountSid, spec: RoomSpec, *, ad_hoc: bool = False
    ) -> RoomRecord:
        """Create an in-progress room (RoomCreated, sequence 0). Raises 53113 for a taken UniqueName."""
        now = self._now()
        sid = RoomSid.new()
        step = lifecycle.open_room(sid, spec, now)
        room = RoomRecord(
            sid=sid,
            account_sid=account_sid,
            spec=spec,
            status="in-progress",
            janus_secret=self._janus_secret(sid),
            ad_hoc=ad_hoc,
            date_created=now,
            date_updated=now,
            recording_rules_updated=now if spec.recording_rules else None,
        ).with_state(step.state, now)
        async with self.store.transaction() as tx:
            await tx.insert_room(room, deadline_of(step.state))
            await tx.add_events(room_events.from_facts(room, step.facts))
        logger.info("room created", extra={"room_sid": sid, "ad_hoc": ad_hoc})
        await self.media.room_opened(room)
        return room

    async def resolve(self, account_sid: AccountSid, ref: str) -> RoomRecord:
        """A room by SID, or an in-progress room by UniqueName; 20404 otherwise."""
        if RoomSid.is_valid(ref):
            room = await self.store.room(account_sid, RoomSid(ref))
        else:
            room = await self.store.room_in_progress_by_name(account_sid, ref)
        if room is None:
            raise room_not_found(ref)
        return room

    async def complete_room(self, account_sid: AccountSid, sid: RoomSid) -> RoomRecord:
        """`Status=completed`: unpublish, disconnect everyone, end the room (53112 when not in progress)."""
        async with self.store.transaction() as tx:
            work = await self._load(tx, sid, account_sid)
            if work.state.status != "in-progress":
                raise invalid(53112, "Room is not in progress")
            now = self._now()
            await self._unpublish(tx, work, [p.sid for p in work.state.participants], now)
            self._apply(work, lifecycle.complete(work.state, now))
            await self._save(tx, work, now)
        await self._after(work)
        return work.room

    # ------------------------------------------------------------------ participants

    async def connect(self, room_sid: RoomSid, identity: str) -> tuple[RoomRecord, ParticipantRecord]:
        """A participant joins (53118 ended, 53105 full, 532xx identity); a connected participant with the
        same identity is disconnected first (53205) and kicked from Janus."""
        pa_sid = ParticipantSid.new()
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid)
            if work.state.status != "in-progress":
                raise _not_in_progress()
            now = self._now()
            previous = work.state.by_identity(identity)
            if previous is not None:
                await self._unpublish(tx, work, [previous.sid], now)
            step = lifecycle.connect(work.state, pa_sid, identity, now)
            work.kick = True
            record = ParticipantRecord(
                sid=pa_sid,
                room_sid=room_sid,
                account_sid=work.room.account_sid,
                identity=identity,
                status="connected",
                date_created=now,
                date_updated=now,
                start_time=now,
            )
            for fact in step.facts:
                if isinstance(fact, lifecycle.ParticipantConnected):
                    await tx.insert_participant(record)
            self._apply(work, step)
            await self._save(tx, work, now)
        await self._after(work)
        logger.info("participant connected", extra={"room_sid": room_sid, "participant_sid": pa_sid})
        return work.room, record

    async def disconnect(
        self,
        room_sid: RoomSid,
        pa_sid: ParticipantSid,
        reason: lifecycle.DisconnectReason = "left",
        *,
        kick: bool = False,
    ) -> bool:
        """Disconnect a participant; False when it was not connected (duplicate signals are no-ops)."""
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid)
            if work.state.participant(pa_sid) is None:
                return False
            now = self._now()
            await self._unpublish(tx, work, [pa_sid], now)
            self._apply(work, lifecycle.disconnect(work.state, pa_sid, now, reason))
            work.kick = kick
            await self._save(tx, work, now)
        await self._after(work)
        logger.info("participant disconnected", extra={"participant_sid": pa_sid, "reason": reason})
        return True

    async def anonymize(self, room: RoomRecord, participant: ParticipantRecord) -> ParticipantRecord:
        """Replace the identity with the PA SID (kept as Twilio: allowed once disconnected)."""
        if participant.status == "connected":
            raise invalid(53209, "Participant must be disconnected before it can be anonymized")
        now = self._now()
        async with self.store.transaction() as tx:
            await tx.anonymize(participant.sid, now)
        return replace(participant, identity=participant.sid, date_updated=now)

    # ------------------------------------------------------------------ tracks

    async def add_tracks(
        self, room_sid: RoomSid, pa_sid: ParticipantSid, tracks: Sequence[NewTrack]
    ) -> list[TrackRecord]:
        """Record published tracks (TrackAdded each). Idempotent per (participant, mid)."""
        added: list[TrackRecord] = []
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid)
            participant = work.state.participant(pa_sid)
            if participant is None:
                return []
            now = self._now()
            existing = {t.mid: t for t in await tx.participant_tracks(pa_sid) if t.published}
            for new in tracks:
                if new.mid in existing:
                    continue
                track = TrackRecord(
                    sid=TrackSid.new(),
                    room_sid=room_sid,
                    participant_sid=pa_sid,
                    name=new.name,
                    kind=new.kind,
                    mid=new.mid,
                    codec=new.codec,
                    enabled=True,
                    published=True,
                    date_created=now,
                    date_updated=now,
                )
                await tx.insert_track(track)
                work.state, (seq,) = lifecycle.take_sequence(work.state)
                work.events.append(
                    room_events.track_event(ev.TrackAdded, work.room, track, participant.identity, seq, now)
                )
                added.append(track)
            await self._save(tx, work, now)
        return added

    async def remove_tracks(self, room_sid: RoomSid, pa_sid: ParticipantSid) -> int:
        """Janus says the participant unpublished: every published track of it is removed."""
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid)
            now = self._now()
            count = await self._unpublish(tx, work, [pa_sid], now)
            await self._save(tx, work, now)
        return count

    async def set_track_enabled(
        self, room_sid: RoomSid, pa_sid: ParticipantSid, mid: str, enabled: bool
    ) -> bool:
        """track-enabled / track-disabled when the flag changes; False when nothing changed."""
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid)
            participant = work.state.participant(pa_sid)
            if participant is None:
                return False
            found = [t for t in await tx.participant_tracks(pa_sid) if t.published and t.mid == mid]
            if not found or found[0].enabled == enabled:
                return False
            now = self._now()
            track = replace(found[0], enabled=enabled, date_updated=now)
            await tx.update_track(track)
            work.state, (seq,) = lifecycle.take_sequence(work.state)
            kind = ev.TrackEnabled if enabled else ev.TrackDisabled
            work.events.append(
                room_events.track_event(kind, work.room, track, participant.identity, seq, now)
            )
            await self._save(tx, work, now)
        return True

    # ------------------------------------------------------------------ rules

    async def set_recording_rules(
        self, account_sid: AccountSid, room_sid: RoomSid, rules: tuple[Rule, ...]
    ) -> RoomRecord:
        """Replace the room's recording rules (RecordingRulesUpdated). 53118 once the room has ended."""
        async with self.store.transaction() as tx:
            work = await self._load(tx, room_sid, account_sid)
            if work.state.status != "in-progress":
                raise _not_in_progress()
            now = self._now()
            work.room = replace(
                work.room, spec=replace(work.room.spec, recording_rules=rules), recording_rules_updated=now
            )
            work.state, (seq,) = lifecycle.take_sequence(work.state)
            work.events.append(room_events.recording_rules_updated(work.room, seq, now))
            await self._save(tx, work, now)
        return work.room

    async def set_subscribe_rules(
        self, room: RoomRecord, participant: ParticipantRecord, rules: tuple[Rule, ...]
    ) -> ParticipantRecord:
        """Replace a participant's subscribe rules and apply them to its WHEP sessions."""
        if room.status != "in-progress" or participant.status != "connected":
            raise invalid(53215, "Subscribe rules can only be changed for a connected participant")
        now = self._now()
        async with self.store.transaction() as tx:
            await tx.set_subscribe_rules(participant.sid, rules, now)
        updated = replace(participant, subscribe_rules=rules, subscribe_rules_updated=now)
        await self.media.subscribe_rules_changed(room, updated)
        return updated

    async def subscribed_tracks(
        self, room: RoomRecord, participant: ParticipantRecord
    ) -> list[tuple[TrackRecord, ParticipantRecord]]:
        """The tracks a connected participant receives: other participants' published tracks its subscribe
        rules allow (with their publisher)."""
        if participant.status != "connected":
            return []
        tracks = [t for t in await self.store.room_tracks(room.sid) if t.participant_sid != participant.sid]
        publishers = await self.store.participants_by_sid(sorted({t.participant_sid for t in tracks}))
        rules = participant.subscribe_rules or include_all()
        out: list[tuple[TrackRecord, ParticipantRecord]] = []
        for track in tracks:
            publisher = publishers.get(track.participant_sid)
            if publisher is not None and is_subscribed(track.ref(publisher.identity), rules):
                out.append((track, publisher))
        return out

    # ------------------------------------------------------------------ timers

    async def run_due(self, limit: int = 20) -> int:
        """Apply every passed deadline of up to `limit` rooms (claimed with SKIP LOCKED). Returns how many
        rooms changed."""
        now = self._now()
        done: list[_Work] = []
        async with self.store.transaction() as tx:
            for sid in await tx.claim_due(now, limit):
                work = await self._load(tx, sid)
                due = [d for d in lifecycle.deadlines(work.state) if d.at <= now]
                if any(d.kind != "max-participant-duration" for d in due):
                    leaving = [p.sid for p in work.state.participants]
                else:
                    leaving = [d.participant_sid for d in due if d.participant_sid is not None]
                await self._unpublish(tx, work, leaving, now)
                self._apply(work, lifecycle.advance(work.state, now))
                work.kick = True
                await self._save(tx, work, now)
                done.append(work)
        for work in done:
            await self._after(work)
        return len(done)

    # ------------------------------------------------------------------ internals

    async def _load(self, tx: RoomTx, sid: RoomSid, account_sid: AccountSid | None = None) -> _Work:
        room = await tx.lock_room(sid)
        if room is None or (account_sid is not None and room.account_sid != account_sid):
            raise room_not_found(sid)
        return _Work(room, room_state(room, await tx.connected(sid)), [], [])

    async def _unpublish(
        self, tx: RoomTx, work: _Work, pa_sids: Sequence[ParticipantSid], now: datetime
    ) -> int:
        count = 0
        for pa_sid in pa_sids:
            participant = work.state.participant(pa_sid)
            identity = participant.identity if participant is not None else ""
            for track in await tx.participant_tracks(pa_sid):
                if not track.published:
                    continue
                gone = replace(track, published=False, date_updated=now)
                await tx.update_track(gone)
                work.state, (seq,) = lifecycle.take_sequence(work.state)
                work.events.append(
                    room_events.track_event(ev.TrackRemoved, work.room, gone, identity, seq, now)
                )
                count += 1
        return count

    def _apply(self, work: _Work, step: lifecycle.Transition) -> None:
        work.state = step.state
        work.events.extend(room_events.from_facts(work.room.with_state(step.state, self._now()), step.facts))
        for fact in step.facts:
            if isinstance(fact, lifecycle.ParticipantDisconnected):
                work.left.append(fact.participant.sid)

    async def _save(self, tx: RoomTx, work: _Work, now: datetime) -> None:
        for event in work.events:
            if isinstance(event, ev.ParticipantDisconnected):
                await tx.mark_disconnected(
                    event.participant_sid, event.occurred_at, event.participant_duration
                )
        work.room = work.room.with_state(work.state, now)
        await tx.update_room(work.room, deadline_of(work.state))
        await tx.add_events(work.events)

    async def _after(self, work: _Work) -> None:
        """Media effects of a committed change; failures are logged (state is already true)."""
        try:
            if work.left:
                await self.media.participants_left(work.room, work.left, kick=work.kick)
            if work.room.status != "in-progress" and any(isinstance(e, ev.RoomEnded) for e in work.events):
                await self.media.room_ended(work.room)
        except Exception:
            logger.exception("media cleanup failed", extra={"room_sid": work.room.sid})
