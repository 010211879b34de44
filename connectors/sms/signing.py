"""Tencent Cloud API 3.0 request signing (TC3-HMAC-SHA256), erp_and_messaging.md §4.

Aliyun's RPC signature v1 is the one the alert SMS client already uses: `connectors.alerts.signing.aliyun_signature`.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_date(timestamp: int) -> str:
    """The credential scope's date: the UTC day of the request timestamp (never the local one)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_canonical_request(host: str, payload: bytes, content_type: str = CONTENT_TYPE) -> str:
    """POST / with no query, headers content-type and host, and the SHA-256 of the body."""
    headers = f"content-type:{content_type}\nhost:{host}\n"
    return f"POST\n/\n\n{headers}\n{SIGNED_HEADERS}\n{_sha256_hex(payload)}"


def tc3_string_to_sign(host: str, service: str, timestamp: int, payload: bytes,
                       content_type: str = CONTENT_TYPE) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    hashed = _sha256_hex(tc3_canonical_request(host, payload, content_type).encode("utf-8"))
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashed}"


def tc3_signature(secret_key: str, host: str, service: str, timestamp: int, payload: bytes,
                  content_type: str = CONTENT_TYPE) -> str:
    """Hex HMAC-SHA256 of the string to sign under the key derived from the secret, date and service."""
    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), tc3_date(timestamp))
    secret_signing = _hmac(_hmac(secret_date, service), "tc3_request")
    string_to_sign = tc3_string_to_sign(host, service, timestamp, payload, content_type)
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(secret_id: str, secret_key: str, host: str, service: str, timestamp: int, payload: bytes,
                      content_type: str = CONTENT_TYPE) -> str:
    """The `Authorization` header of a TC3 request."""
    signature = tc3_signature(secret_key, host, service, timestamp, payload, content_type)
    return (f"{ALGORITHM} Credential={secret_id}/{tc3_date(timestamp)}/{service}/tc3_request, "
            f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}")


def parse_tc3_authorization(header: str) -> dict[str, str] | None:
    """{"secret_id", "date", "service", "signed_headers", "signature"} of an Authorization header, or None."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    credential = parts.get("Credential", "").split("/")
    if len(credential) != 4 or credential[3] != "tc3_request" or "Signature" not in parts:
        return None
    return {"secret_id": credential[0], "date": credential[1], "service": credential[2],
            "signed_headers": parts.get("SignedHeaders", ""), "signature": parts["Signature"]}
