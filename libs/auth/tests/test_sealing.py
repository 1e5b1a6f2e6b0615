"""Sealing round trips and refuses wrong keys, contexts and tampering; hashes verify."""

import os

import pytest

from libs.auth.errors import SealingError
from libs.auth.sealing import hash_secret, seal, unseal, verify_secret

KEY = os.urandom(32)


def test_seal_round_trip_and_randomized() -> None:
    a = seal(KEY, "token-123", "AC1")
    b = seal(KEY, "token-123", "AC1")
    assert a != b and a.startswith("v1.")
    assert "token-123" not in a
    assert unseal(KEY, a, "AC1") == "token-123"


@pytest.mark.parametrize("mutation", ["key", "context", "tamper", "format"])
def test_unseal_refuses(mutation: str) -> None:
    sealed = seal(KEY, "secret", "SK1")
    key, context = KEY, "SK1"
    if mutation == "key":
        key = os.urandom(32)
    elif mutation == "context":
        context = "SK2"
    elif mutation == "tamper":
        sealed = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    else:
        sealed = "v0." + sealed[3:]
    with pytest.raises(SealingError):
        unseal(key, sealed, context)


def test_hash_verify() -> None:
    stored = hash_secret("hunter2")
    assert stored.startswith("scrypt$") and "hunter2" not in stored
    assert verify_secret("hunter2", stored)
    assert not verify_secret("hunter3", stored)
    assert not verify_secret("hunter2", "garbage")
    assert hash_secret("hunter2") != stored  # salted
