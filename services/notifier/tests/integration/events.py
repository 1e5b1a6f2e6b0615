"""Event builders for notifier integration tests."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.models import ParticipantConnected, RoomCreated
from libs.events.sids import AccountSid, ParticipantSid, RoomSid

ACCOUNT = AccountSid("AC" + "7" * 32)
TOKEN = "notifier-it-auth-token-0123456789"


def room_created(url: str, *, room: RoomSid | None = None, seq: int = 0, method: str = "POST") -> RoomCreated:
    return RoomCreated(
        account_sid=ACCOUNT,
        occurred_at=datetime.now(UTC),
        room_sid=room or RoomSid.new(),
        room_name="it-room",
        room_status="in-progress",
        sequence_number=seq,
        status_callback=url,
        status_callback_method=method,
    )


def participant_connected(url: str, room: RoomSid, seq: int) -> ParticipantConnected:
    return ParticipantConnected(
        account_sid=ACCOUNT,
        occurred_at=datetime.now(UTC),
        room_sid=room,
        room_name="it-room",
        room_status="in-progress",
        sequence_number=seq,
        status_callback=url,
        participant_sid=ParticipantSid.new(),
        participant_identity=f"user-{seq}",
    )
