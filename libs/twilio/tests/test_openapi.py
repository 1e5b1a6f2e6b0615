"""The OpenAPI checker accepts spec-shaped bodies and rejects wrong ones."""

import pytest

from libs.twilio.openapi import spec_path, validate_list, validate_resource


def test_the_spec_is_available() -> None:
    """The spec comes from ../shared beside the clone (as in CI) or TWILIO_OPENAPI_SPEC; never skipped."""
    assert spec_path().is_file(), f"Twilio OpenAPI spec not found at {spec_path()}; set TWILIO_OPENAPI_SPEC"


COMPOSITION = {
    "account_sid": "AC" + "a" * 32,
    "status": "enqueued",
    "date_created": "2026-01-01T00:00:00Z",
    "date_completed": None,
    "date_deleted": None,
    "sid": "CJ" + "b" * 32,
    "room_sid": "RM" + "c" * 32,
    "audio_sources": ["*"],
    "audio_sources_excluded": [],
    "video_layout": {},
    "resolution": "640x480",
    "trim": True,
    "format": "webm",
    "bitrate": 0,
    "size": 0,
    "duration": 0,
    "media_external_location": None,
    "status_callback": None,
    "status_callback_method": "POST",
    "url": "http://127.0.0.1:8080/v1/Compositions/CJ" + "b" * 32,
    "links": {"media": "http://127.0.0.1:8080/v1/Compositions/CJ" + "b" * 32 + "/Media"},
}


def test_valid_composition() -> None:
    validate_resource("video.v1.composition", COMPOSITION)
    validate_resource("video.v1.composition", COMPOSITION, forbid_extra=True)


@pytest.mark.parametrize(
    "patch",
    [{"status": "done"}, {"sid": "XX" + "b" * 32}, {"size": "big"}, {"trim": "yes"}],
)
def test_invalid_composition(patch: dict[str, object]) -> None:
    with pytest.raises(AssertionError):
        validate_resource("video.v1.composition", {**COMPOSITION, **patch})


def test_require_all_and_forbid_extra() -> None:
    partial = {k: v for k, v in COMPOSITION.items() if k != "bitrate"}
    validate_resource("video.v1.composition", partial)
    with pytest.raises(AssertionError, match="bitrate"):
        validate_resource("video.v1.composition", partial, require_all=True)
    with pytest.raises(AssertionError):
        validate_resource("video.v1.composition", {**COMPOSITION, "bogus": 1}, forbid_extra=True)


def test_list_response() -> None:
    meta = {
        "page": 0,
        "page_size": 50,
        "first_page_url": "http://x/v1/Compositions?PageSize=50&Page=0",
        "previous_page_url": None,
        "url": "http://x/v1/Compositions?PageSize=50&Page=0",
        "next_page_url": None,
        "key": "compositions",
    }
    validate_list("/v1/Compositions", {"compositions": [COMPOSITION], "meta": meta})
    with pytest.raises(AssertionError):
        validate_list("/v1/Compositions", {"compositions": [{**COMPOSITION, "status": 1}], "meta": meta})
