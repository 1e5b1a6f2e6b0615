"""Presigned URLs are signed for the public endpoint when one is configured (no network needed)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from libs.config import S3Settings
from libs.storage import MinioObjectStore


async def test_presigned_url_uses_public_endpoint() -> None:
    settings = S3Settings(
        endpoint="127.0.0.1:1",
        access_key="ak",
        secret_key=SecretStr("sk"),
        public_endpoint="media.example.com:8443",
        public_secure=True,
    )
    store = MinioObjectStore(settings, bucket="media")
    url = await store.presigned_get("rec/RT1.mka", timedelta(minutes=10), filename="RT1.mka")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "media.example.com:8443",
        "/media/rec/RT1.mka",
    )
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    assert query["X-Amz-Credential"][0].startswith("ak/")


async def test_presigned_url_defaults_to_endpoint() -> None:
    store = MinioObjectStore(S3Settings(endpoint="127.0.0.1:1", access_key="ak", secret_key=SecretStr("sk")))
    url = await store.presigned_get("k", timedelta(seconds=60))
    assert url.startswith("http://127.0.0.1:1/mixdown-media/k?")
