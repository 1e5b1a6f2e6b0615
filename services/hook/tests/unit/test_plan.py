"""What a hook does for a finished room: a request with the hook's definition, or hook-failed (53631)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.models import CompositionHookFailed, CompositionRequested
from libs.events.sids import AccountSid, HookSid, RecordingSid, RoomSid
from services.hook.domain import Hook, HookRequest, define_hook, plan_room_composition

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _hook() -> Hook:
    definition = define_hook(
        HookRequest(
            friendly_name="all",
            enabled=True,
            video_layout='{"grid": {"video_sources": ["*"]}}',
            audio_sources=("*",),
            audio_sources_excluded=("music",),
            resolution="1280x720",
            format="mp4",
            trim=False,
            status_callback="https://example.com/cb",
            status_callback_method="GET",
        )
    )
    return Hook(HookSid.new(), AccountSid.new(), definition, NOW, None)


def test_a_room_with_recordings_gets_a_composition_request_from_the_hooks_definition() -> None:
    hook, room, recordings = _hook(), RoomSid.new(), [RecordingSid.new(), RecordingSid.new()]
    fact = plan_room_composition(hook, room_sid=room, room_name="standup", recording_sids=recordings, now=NOW)
    assert isinstance(fact, CompositionRequested)
    assert fact.composition_sid.startswith("CJ")
    assert (fact.account_sid, fact.room_sid, fact.hook_sid) == (hook.account_sid, room, hook.sid)
    assert fact.hook_friendly_name == "all"
    assert fact.video_layout["grid"]["video_sources"] == ["*"]
    assert (fact.audio_sources, fact.audio_sources_excluded) == (["*"], ["music"])
    assert (fact.resolution, fact.format, fact.trim) == ("1280x720", "mp4", False)
    assert (fact.status_callback, fact.status_callback_method) == ("https://example.com/cb", "GET")
    assert fact.recording_sids == recordings


def test_each_request_gets_its_own_composition_sid() -> None:
    hook, room, recordings = _hook(), RoomSid.new(), [RecordingSid.new()]
    first = plan_room_composition(hook, room_sid=room, room_name="r", recording_sids=recordings, now=NOW)
    second = plan_room_composition(hook, room_sid=room, room_name="r", recording_sids=recordings, now=NOW)
    assert isinstance(first, CompositionRequested)
    assert isinstance(second, CompositionRequested)
    assert first.composition_sid != second.composition_sid


def test_a_room_without_recordings_is_a_hook_failure() -> None:
    hook, room = _hook(), RoomSid.new()
    fact = plan_room_composition(hook, room_sid=room, room_name="empty", recording_sids=[], now=NOW)
    assert isinstance(fact, CompositionHookFailed)
    assert fact.error_code == 53631
    assert fact.hook_sid == hook.sid
    assert fact.composition_sid is None
    assert fact.status_callback == "https://example.com/cb"
