"""A minimal S3 client (SigV4, stdlib): enough to create the devstack's bucket in MinIO."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.error
import urllib.request

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _request(method: str, endpoint: str, path: str, access_key: str, secret_key: str, region: str) -> int:
    now = dt.datetime.now(dt.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers = {"host": endpoint, "x-amz-content-sha256": _EMPTY_SHA256, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers))
    canonical_request = "\n".join([method, path, "", canonical_headers, signed_headers, _EMPTY_SHA256])
    scope = f"{day}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _sign(("AWS4" + secret_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"http://{endpoint}{path}", method=method)  # noqa: S310
    for name, value in headers.items():
        if name != "host":
            request.add_header(name, value)
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    request.add_header("Authorization", authorization)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def ensure_bucket(endpoint: str, bucket: str, access_key: str, secret_key: str, region: str) -> bool:
    """Create bucket if missing. Returns True if it was created. Raises RuntimeError on S3 errors."""
    status = _request("HEAD", endpoint, f"/{bucket}", access_key, secret_key, region)
    if status == 200:
        return False
    if status != 404:
        raise RuntimeError(f"HEAD bucket {bucket}: HTTP {status}")
    status = _request("PUT", endpoint, f"/{bucket}", access_key, secret_key, region)
    if status != 200:
        raise RuntimeError(f"PUT bucket {bucket}: HTTP {status}")
    return True
