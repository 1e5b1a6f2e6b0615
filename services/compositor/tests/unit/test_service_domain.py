"""Composition request validation, status transitions, fair job order and progress throttling (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.composition.spec import RequestError
from services.compositor.domain import (
    CompositionRequest,
    QueueHead,
    can_transition,
    define_composition,
    fair_order,
    media_key,
    media_ttl,
    next_progress,
    refuse_for_recordings,
)

ROOM = "RM" + "a" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def request(**overrides: object) -> CompositionRequest:
    values: dict[str, object] = {
        "room_sid": ROOM,
        "video_layout": '{"grid": {"video_sources": ["*"]}}',
        "audio_sources": ("*",),
        "audio_sources_excluded": (),
        "resolution": None,
        "format": None,
        "trim": None,
        "status_callback": None,
        "status_callback_method": None,
    }
    values.update(overrides)
    return CompositionRequest(**values)  # type: ignore[arg-type]  # test builder over the dataclass fields


def test_defaults_follow_twilio() -> None:
    spec = define_composition(request())
    assert spec.resolution == "640x480"
    assert spec.format == "webm"
    assert spec.trim is True
    assert spec.status_callback_method == "POST"
    assert spec.video_layout["grid"]["reuse"] == "show_oldest"
    assert spec.video_layout["grid"]["width"] is None


def test_audio_only_is_allowed_and_echoes_empty_layout() -> None:
    spec = define_composition(request(video_layout=None, format="MP4", status_callback_method="get"))
    assert spec.video_layout == {}
    assert spec.format == "mp4"
    assert spec.status_callback_method == "GET"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"room_sid": None}, 20001),
        ({"room_sid": "RM123"}, 20001),
        ({"room_sid": "CJ" + "a" * 32}, 20001),
        ({"video_layout": None, "audio_sources": ()}, 20001),
        ({"video_layout": "{not json"}, 53640),
        ({"video_layout": '{"r": {"video_sources": []}}'}, 53640),
        ({"video_layout": '{"r": {"video_sources": ["*"], "x_pos": 5000}}'}, 53640),
        ({"resolution": "1920x1080"}, 53641),
        ({"resolution": "640x"}, 53641),
        ({"resolution": "15x15"}, 53641),
        ({"format": "avi"}, 20001),
        ({"status_callback_method": "PUT"}, 20001),
    ],
)
def test_invalid_requests_carry_their_code(overrides: dict[str, object], code: int) -> None:
    with pytest.raises(RequestError) as info:
        define_composition(request(**overrides))
    assert info.value.code == code
    assert info.value.status == 400


def test_hd_needs_the_explicit_opt_in() -> None:
    assert define_composition(request(resolution="1920x1080", allow_hd=True)).resolution == "1920x1080"
    with pytest.raises(RequestError) as info:
        define_composition(request(resolution="2560x1440", allow_hd=True))
    assert info.value.code == 53641


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("enqueued", "processing", True),
        ("enqueued", "deleted", True),
        ("processing", "completed", True),
        ("processing", "failed", True),
        ("completed", "deleted", True),
        ("failed", "deleted", True),
        ("completed", "processing", False),
        ("deleted", "completed", False),
        ("failed", "completed", False),
        ("enqueued", "completed", False),
    ],
)
def test_status_transitions(current: str, target: str, allowed: bool) -> None:
    assert can_transition(current, target) is allowed  # type: ignore[arg-type]  # literals from the table


def _head(sid: str, account: str, age_s: int, served_s_ago: int | None) -> QueueHead:
    served = None if served_s_ago is None else T0 - timedelta(seconds=served_s_ago)
    return QueueHead(sid, account, T0 - timedelta(seconds=age_s), served)


def test_fair_order_serves_new_accounts_then_least_recently_served() -> None:
    heads = [
        _head("CJbusy", "ACbusy", age_s=900, served_s_ago=1),  # oldest job, but its account just ran one
        _head("CJidle", "ACidle", age_s=10, served_s_ago=600),
        _head("CJnew2", "ACnew2", age_s=5, served_s_ago=None),
        _head("CJnew1", "ACnew1", age_s=50, served_s_ago=None),
    ]
    order = [h.composition_sid for h in fair_order(heads)]
    assert order == ["CJnew1", "CJnew2", "CJidle", "CJbusy"]


def test_fair_order_takes_every_accounts_oldest_job_before_second_ones() -> None:
    heads = [
        QueueHead("CJa1", "ACa", T0, None, position=1),
        QueueHead("CJa0", "ACa", T0 - timedelta(seconds=5), None, position=0),
        QueueHead("CJb0", "ACb", T0, T0, position=0),
    ]
    assert [h.composition_sid for h in fair_order(heads)] == ["CJa0", "CJb0", "CJa1"]


def test_fair_order_round_robin_simulation() -> None:
    """Account A queues 6 jobs before B and C queue 2 each: the claims interleave, A does not starve them."""
    queues = {
        "ACa": [f"A{i}" for i in range(6)],
        "ACb": ["B0", "B1"],
        "ACc": ["C0", "C1"],
    }
    enqueued = {sid: i for i, sid in enumerate(["A0", "A1", "A2", "A3", "A4", "A5", "B0", "B1", "C0", "C1"])}
    served: dict[str, datetime] = {}
    claims: list[str] = []
    clock = T0
    while any(queues.values()):
        heads = [
            QueueHead(q[0], acc, T0 + timedelta(seconds=enqueued[q[0]]), served.get(acc))
            for acc, q in queues.items()
            if q
        ]
        pick = fair_order(heads)[0]
        claims.append(pick.composition_sid)
        queues[pick.account_sid].pop(0)
        clock += timedelta(seconds=1)
        served[pick.account_sid] = clock
    assert claims[:6] == ["A0", "B0", "C0", "A1", "B1", "C1"]
    assert claims[6:] == ["A2", "A3", "A4", "A5"]


@pytest.mark.parametrize(
    ("last", "fraction", "expected"),
    [
        (0, 0.05, None),
        (0, 0.10, 10),
        (0, 0.37, 30),
        (30, 0.39, None),
        (30, 0.40, 40),
        (90, 0.999, None),
        (0, 1.0, None),  # completion is composition-available, never progress 100
        (50, 0.2, None),  # a retried job does not go backwards
    ],
)
def test_progress_throttling(last: int, fraction: float, expected: int | None) -> None:
    step = next_progress(last, fraction, elapsed_s=10.0)
    assert (None if step is None else step.percentage_done) == expected


def test_progress_estimates_seconds_remaining() -> None:
    step = next_progress(0, 0.25, elapsed_s=30.0)
    assert step is not None
    assert step.seconds_remaining == 90


def test_progress_events_over_a_run_are_about_every_ten_percent() -> None:
    last, sent = 0, []
    for i in range(1, 1001):
        step = next_progress(last, i / 1000, elapsed_s=i / 100)
        if step is not None:
            sent.append(step.percentage_done)
            last = step.percentage_done
    assert sent == [10, 20, 30, 40, 50, 60, 70, 80, 90]


def test_media_key_and_ttl() -> None:
    assert media_key("AC1", "CJ2", "mp4") == "compositions/AC1/CJ2.mp4"
    assert media_ttl(None) == 600
    assert media_ttl(3600) == 3600
    for bad in (0, 3601):
        with pytest.raises(RequestError):
            media_ttl(bad)


@pytest.mark.parametrize(
    ("counts", "final", "ended_for_s", "code"),
    [
        ({"completed": 2}, True, 5.0, None),
        ({"started": 1}, True, 900.0, None),
        ({}, False, None, None),  # room in progress: recordings may still come
        ({}, False, 30.0, None),  # ended recently: recording facts may still be on their way
        ({}, True, 1.0, 53630),  # the recorder says the set is final, and it is empty
        ({}, False, 601.0, 53630),  # ended long ago, nothing ever arrived
        ({"deleted": 2}, True, 1.0, 53628),
        ({"failed": 1}, True, 1.0, 53630),
    ],
)
def test_refusing_rooms_without_recordings(
    counts: dict[str, int], final: bool, ended_for_s: float | None, code: int | None
) -> None:
    refusal = refuse_for_recordings(counts, final, ended_for_s, wait_limit_s=600.0)
    assert (None if refusal is None else refusal.code) == code
