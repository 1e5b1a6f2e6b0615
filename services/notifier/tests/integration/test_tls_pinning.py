"""https callbacks sent to the checked IP keep TLS honest: SNI and certificate check use the URL's host name.

Local only (a TLS receiver on 127.0.0.1 with a throwaway CA); no devstack needed.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twilio.request_validator import RequestValidator

from libs.testing.callbacks import serve_receiver
from libs.twilio.signature import compute_signature
from services.notifier.delivery import CallbackRequest, CallbackSender
from services.notifier.targets import TargetPolicy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

TOKEN = "tls-test-token"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_pki(directory: Path, server_name: str) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) files; the server cert names only ``server_name``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("notifier test CA"))
        .issuer_name(_name("notifier test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


async def _resolve(host: str, port: int) -> Sequence[str]:
    if host in ("hooks.test", "other.test"):
        return ["127.0.0.1"]
    raise OSError("unknown host")


def _sender(ca_path: Path) -> CallbackSender:
    context = ssl.create_default_context(cafile=str(ca_path))
    client = httpx.AsyncClient(verify=context, follow_redirects=False, trust_env=False)
    return CallbackSender(
        policy=TargetPolicy(allow_private=True), sign=compute_signature, resolver=_resolve, client=client
    )


async def test_https_to_pinned_ip_verifies_the_host_name(tmp_path: Path) -> None:
    ca_path, cert_path, key_path = make_pki(tmp_path, "hooks.test")
    sender = _sender(ca_path)
    params = {"StatusCallbackEvent": "composition-available", "CompositionSid": "CJ" + "1" * 32}
    try:
        async with serve_receiver(ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)) as receiver:
            good = f"https://hooks.test:{receiver.port}/cb?x=1"
            result = await sender.send(CallbackRequest(good, "POST", params, "tok-1"), TOKEN)
            assert result.status == 200, result.error
            (seen,) = receiver.received
            assert seen.url == good
            assert RequestValidator(TOKEN).validate(seen.url, seen.form, seen.headers["x-twilio-signature"])

            # Same IP, but the certificate does not name this host: the connection must fail (retryable).
            wrong = f"https://other.test:{receiver.port}/cb"
            failed = await sender.send(CallbackRequest(wrong, "POST", params, "tok-2"), TOKEN)
            assert failed.status is None
            assert failed.error is not None and failed.error.startswith("connect failed")
            assert not failed.refused
            assert len(receiver.received) == 1
    finally:
        await sender.aclose()
