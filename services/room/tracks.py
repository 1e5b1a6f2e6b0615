"""Published tracks: how WHIP publishers name their tracks, and the per-room track limits.

Naming (a decision, see docs/rooms.md), per m-line of the publisher's SDP offer, first match wins:
1. the WHIP URL query `audio_track_name=` / `video_track_name=` names the *first* audio / video m-line;
2. the track id of the m-line's `a=msid:<stream> <track>` (browsers put the MediaStreamTrack id there,
   a UUID, which is what Twilio's SDKs use as the default track name);
3. a fresh UUID4.
Names are 1..128 characters, valid UTF-8 without control characters, unique per participant
(53301 invalid / 53302 too long / 53303 invalid characters / 53304 duplicated). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from libs.events.sids import ParticipantSid, TrackSid
from services.room.errors import RoomRuleError, invalid
from services.room.rules import TrackKind
from services.room.sdp import SessionDescription

TRACK_NAME_MAX: Final = 128
NAME_OVERRIDE_KEYS: Final[Mapping[str, str]] = {"audio": "audio_track_name", "video": "video_track_name"}


@dataclass(frozen=True)
class OfferedTrack:
    """One sending m-line of a publisher's offer."""

    mid: str
    kind: TrackKind
    msid_track: str | None = None


@dataclass(frozen=True)
class PublishedTrack:
    sid: TrackSid
    participant_sid: ParticipantSid
    name: str
    kind: TrackKind
    mid: str
    enabled: bool = True


def offered_tracks(offer: SessionDescription) -> tuple[OfferedTrack, ...]:
    """The audio/video m-lines a publisher's offer sends on. Data channels are not tracks here.
    Raises 53300 for a sending m-line without `a=mid` (Janus and we key streams by mid)."""
    found: list[OfferedTrack] = []
    for section in offer.media:
        if section.kind not in ("audio", "video") or not section.sends:
            continue
        if not section.mid:
            raise invalid(53300, "Track is invalid: every media section needs an a=mid")
        kind: TrackKind = "audio" if section.kind == "audio" else "video"
        found.append(OfferedTrack(mid=section.mid, kind=kind, msid_track=section.msid_track))
    return tuple(found)


def validate_track_name(name: str) -> str:
    """53301 empty, 53302 longer than 128 characters, 53303 invalid characters."""
    if name.strip() == "":
        raise invalid(53301, "Track name is invalid: it must not be empty")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(53303, "Track name contains invalid characters") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or "\ufffd" in name:
        raise invalid(53303, "Track name contains invalid characters")
    if len(name) > TRACK_NAME_MAX:
        raise invalid(53302, "Track name is too long")
    return name


def name_tracks(
    offered: Sequence[OfferedTrack],
    query: Mapping[str, str],
    existing_names: Collection[str],
    new_name: Callable[[], str],
) -> tuple[tuple[OfferedTrack, str], ...]:
    """Pick a name for every offered track (rules in the module docstring).

    `query` is the WHIP URL query; `existing_names` the participant's current track names; `new_name`
    makes a default name (a UUID4 string in production). Raises 53301–53304.
    """
    used = set(existing_names)
    overrides_left = {kind: query[key] for kind, key in NAME_OVERRIDE_KEYS.items() if key in query}
    named: list[tuple[OfferedTrack, str]] = []
    for track in offered:
        override = overrides_left.pop(track.kind, None)
        if override is not None:
            name = override
        elif track.msid_track and track.msid_track != "-":
            name = track.msid_track
        else:
            name = new_name()
        validate_track_name(name)
        if name in used:
            raise invalid(53304, "Track name is duplicated for this participant")
        used.add(name)
        named.append((track, name))
    return tuple(named)


def check_publishable(
    offered: Sequence[OfferedTrack],
    *,
    audio_only: bool,
    room_published: int,
    max_concurrent_published_tracks: int,
) -> None:
    """Room-level limits: video/data in an audio-only room is 53125; more concurrent published tracks
    than the room allows is 53203 (a cap of 0 means unlimited)."""
    if audio_only and any(t.kind == "video" for t in offered):
        raise invalid(53125, "Video tracks are not allowed in an audio-only room")
    cap = max_concurrent_published_tracks
    if cap > 0 and room_published + len(offered) > cap:
        raise RoomRuleError(400, 53203, "The room's maximum number of published tracks is reached")


def publish(
    participant_sid: ParticipantSid,
    named: Sequence[tuple[OfferedTrack, str]],
    new_sid: Callable[[], TrackSid],
) -> tuple[PublishedTrack, ...]:
    """The `PublishedTrack`s for named offered tracks, each with a fresh MT SID."""
    return tuple(
        PublishedTrack(
            sid=new_sid(), participant_sid=participant_sid, name=name, kind=track.kind, mid=track.mid
        )
        for track, name in named
    )


def set_enabled(track: PublishedTrack, enabled: bool) -> PublishedTrack | None:
    """The track with a new `enabled` flag, or None when nothing changes (no callback is due)."""
    if track.enabled == enabled:
        return None
    return replace(track, enabled=enabled)


def find_track(tracks: Sequence[PublishedTrack], ref: str) -> PublishedTrack | None:
    """A published track by MT SID or by name (Twilio's fetch accepts both)."""
    return next((t for t in tracks if ref in (t.sid, t.name)), None)
