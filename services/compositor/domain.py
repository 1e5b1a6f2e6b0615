"""Composition rules: request validation, the status machine, fair job order and progress throttling.

Pure: no I/O. The API layer reads Twilio's parameter names and hands plain values here; every validation
failure is a ``RequestError`` with the Twilio-style code the API answers with (docs/compositions.md,
"The Compositions API and job lifecycle").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from libs.composition.spec import (
    CODE_INVALID_PARAMETER,
    CompositionParams,
    RawParams,
    RequestError,
    define_params,
)
from libs.events.sids import AccountSid, CompositionSid, HookSid, RoomSid

Status = Literal["enqueued", "processing", "completed", "failed", "deleted"]
STATUSES: tuple[Status, ...] = ("enqueued", "processing", "completed", "failed", "deleted")

CODE_NOT_FOUND = 20404
CODE_INTERNAL = 53626
CODE_RECORDINGS_DELETED = 53628
CODE_NO_SOURCES = 53630
CODE_TOO_LARGE = 53633

MEDIA_TTL_DEFAULT_S = 600
MEDIA_TTL_MAX_S = 3600
PROGRESS_STEP = 10  # percent between two composition-progress events

# Allowed status changes. ``deleted`` is reachable from every live state: deleting a queued or running
# composition cancels its job.
_TRANSITIONS: dict[Status, frozenset[Status]] = {
    "enqueued": frozenset({"processing", "failed", "deleted"}),
    "processing": frozenset({"completed", "failed", "deleted", "processing"}),
    "completed": frozenset({"deleted"}),
    "failed": frozenset({"deleted"}),
    "deleted": frozenset(),
}


@dataclass(frozen=True)
class CompositionRequest(RawParams):
    """The raw values of a create request (None = parameter absent)."""

    room_sid: str | None
    allow_hd: bool = False


@dataclass(frozen=True)
class CompositionSpec(CompositionParams):
    """What to compose, for which room (and hook, when a hook created it)."""

    room_sid: RoomSid
    hook_sid: HookSid | None = None
    hook_friendly_name: str | None = None


@dataclass(frozen=True)
class Composition:
    """A stored composition."""

    sid: CompositionSid
    account_sid: AccountSid
    spec: CompositionSpec
    status: Status
    date_created: datetime
    date_completed: datetime | None = None
    date_deleted: datetime | None = None
    bitrate: int = 0  # kbit/s
    size: int = 0  # bytes
    duration: int = 0  # whole seconds
    object_key: str | None = None


def _room_sid(value: str | None) -> RoomSid:
    if value is None or value == "":
        raise RequestError(CODE_INVALID_PARAMETER, "Missing required parameter RoomSid in the post body")
    if not RoomSid.is_valid(value):
        raise RequestError(
            CODE_INVALID_PARAMETER, "RoomSid must be a Room SID (RM followed by 32 hex digits)"
        )
    return RoomSid(value)


def define_composition(request: CompositionRequest) -> CompositionSpec:
    """Validate a create request. Defaults as Twilio: 640x480, webm, trim true, callback method POST.

    ``allow_hd`` (Mixdown's ``MixdownAllowHd``) raises the resolution cap to 1920x1080.
    Raises RequestError with 20001 (parameters), 53640 (VideoLayout) or 53641 (Resolution).
    """
    room_sid = _room_sid(request.room_sid)
    params = define_params(request, allow_hd=request.allow_hd)
    return CompositionSpec(**params.params(), room_sid=room_sid)


def refuse_for_recordings(
    counts: dict[str, int], recordings_final: bool, ended_for_s: float | None, wait_limit_s: float
) -> RequestError | None:
    """Why a composition of this room cannot be created, or None to accept it.

    Only a room whose recording set is known (finalized by the recorder, or ended longer than
    ``wait_limit_s`` ago) with nothing composable is refused: 53628 when its recordings were deleted, else
    53630. Otherwise the request is accepted and its job waits for the recordings (``counts`` are the
    room's recordings by status as known now; they may still be on their way)."""
    if counts.get("completed") or counts.get("started"):
        return None
    known = recordings_final or (ended_for_s is not None and ended_for_s >= wait_limit_s)
    if not known:
        return None
    if counts.get("deleted"):
        return RequestError(CODE_RECORDINGS_DELETED, "The room's recordings were deleted")
    return RequestError(CODE_NO_SOURCES, "The room has no recordings to compose")


def can_transition(current: Status, target: Status) -> bool:
    """Whether ``current`` → ``target`` is a legal status change (processing → processing is a retry)."""
    return target in _TRANSITIONS[current]


def media_key(account_sid: str, sid: str, fmt: str) -> str:
    """The object key of a composition's output: ``compositions/<account>/<CJ>.<fmt>``."""
    return f"compositions/{account_sid}/{sid}.{fmt}"


def media_ttl(value: int | None) -> int:
    """The lifetime in seconds of a Media link: default 600, 1..3600. Raises RequestError(20001)."""
    if value is None:
        return MEDIA_TTL_DEFAULT_S
    if not 1 <= value <= MEDIA_TTL_MAX_S:
        raise RequestError(CODE_INVALID_PARAMETER, f"Ttl must be between 1 and {MEDIA_TTL_MAX_S}")
    return value


# ---------------------------------------------------------------- fair scheduling


@dataclass(frozen=True)
class QueueHead:
    """A claimable job: its place in its account's queue (0 = oldest) and when that account was last
    served (None = never)."""

    composition_sid: str
    account_sid: str
    enqueued_at: datetime
    last_served: datetime | None
    position: int = 0


def fair_order(heads: list[QueueHead]) -> list[QueueHead]:
    """The order in which to try claiming: every account's oldest job before any account's second one;
    among those, accounts never served first, then the least recently served (round-robin across
    accounts); ties by the job's age, then SID. One busy account cannot starve the others, and several
    workers of one instance still find work when a single account has many jobs."""
    return sorted(
        heads,
        key=lambda h: (
            h.position,
            h.last_served is not None,
            h.last_served or h.enqueued_at,
            h.enqueued_at,
            h.composition_sid,
        ),
    )


# ---------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    percentage_done: int
    seconds_remaining: int | None


def next_progress(last_reported: int, fraction: float, elapsed_s: float) -> Progress | None:
    """The composition-progress event to send for ``fraction`` in [0, 1], or None.

    Sent each time the rounded-down percentage crosses a multiple of PROGRESS_STEP above ``last_reported``
    and stays below 100 (completion is composition-available). SecondsRemaining is a linear estimate."""
    percent = int(max(0.0, min(1.0, fraction)) * 100)
    step = percent - percent % PROGRESS_STEP
    if step <= last_reported or step >= 100 or step <= 0:
        return None
    remaining = None
    if fraction > 0:
        remaining = max(0, round(elapsed_s / fraction * (1.0 - fraction)))
    return Progress(step, remaining)
