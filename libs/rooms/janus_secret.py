"""The per-room Janus VideoRoom secret, derived instead of shared.

Janus's `rtp_forward`/`stop_rtp_forward` need both the plugin's `admin_key` (because `lock_rtp_forward`
is on) and the room's `secret`. Rather than carrying the secret in an event (events are logged and
delivered to many consumers) or in another service's table, every process that holds the Janus admin key
derives the same secret: HMAC-SHA256(admin key, "janus-room-secret:" + room id), hex. Whoever holds the
admin key can already administer every room, so this grants nothing new.
"""

from __future__ import annotations

import hashlib
import hmac


def janus_room_secret(admin_key: str, room_id: str) -> str:
    """The `secret` of the Janus room `room_id` (our RM SID); 64 hex characters."""
    if not admin_key:
        raise ValueError("the Janus admin key must not be empty")
    message = f"janus-room-secret:{room_id}".encode()
    return hmac.new(admin_key.encode(), message, hashlib.sha256).hexdigest()
