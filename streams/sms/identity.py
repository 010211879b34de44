"""Who a message goes to and which message it is, without keeping a plain phone number anywhere.

The idempotency key names the message: one per (order, trigger), so a platform's re-sent update, a replay of
order.events or a sender restarted mid-batch finds the key already taken. Phones are kept as a keyed hash (for caps
and opt-outs) and a masked form (for display); the number itself is resolved only in the sending step.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from connectors.sms.text import normalize_phone

_OPT_OUT_WORDS = frozenset({"R", "TD", "退订"})
_TRAILING = " \t\r\n。.!！,，"


def message_key(order_id: str, trigger: str) -> str:
    """The idempotency key of the message `trigger` fires for `order_id` (32 hex chars), also the provider's out id.

    `trigger` is the event type, with the tracking step for tracking updates (`TrackingUpdated:派送中`), or a member
    occasion (`Birthday:2026`).
    """
    return hashlib.blake2b(f"{order_id}|{trigger}".encode(), digest_size=16).hexdigest()


def phone_hash(phone: str, key: bytes) -> str:
    """HMAC-SHA256 of the normalized number under the deployment's key: stable for caps and opt-outs, and no
    dictionary of 11-digit numbers reverses it without the key."""
    return hmac.new(key, normalize_phone(phone).encode(), hashlib.sha256).hexdigest()


def token_hash(platform: str, token: str, key: bytes) -> str:
    """The keyed hash of a platform's buyer token: caps count an encrypted buyer as they count a number."""
    return hmac.new(key, f"{platform}|{token}".encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    """`138****8000` for display; a short or foreign number keeps only its last four digits."""
    digits = normalize_phone(phone)
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    return f"****{digits[-4:]}" if len(digits) >= 4 else "****"


def is_opt_out(reply: str) -> bool:
    """A buyer's uplink reply that refuses marketing: R, TD or 退订, in any case, with stray spaces or punctuation."""
    return reply.strip(_TRAILING).upper() in _OPT_OUT_WORDS


Channel = Literal["gateway", "platform", "none"]


@dataclass(frozen=True)
class Recipient:
    """Where a message can go: a plain phone (commercial gateways) or a platform's encrypted buyer (its official
    channel, with the platform's token or ciphertext), or neither (`unreachable`)."""

    channel: Channel
    platform: str | None = None
    token: str | None = None  # the platform's OAID or ciphertext, passed through, never decrypted
    phone_hash: str | None = None
    to_masked: str | None = None


def recipient_of(platform: str, secure_token: str | None, plain_phone: str | None, phone_masked: str | None,
                 key: bytes) -> Recipient:
    """The channel for an order's receiver: a platform token wins (the platform's own channel, never decrypted);
    else a plain phone goes through a gateway; else nobody can be reached."""
    if secure_token:
        return Recipient("platform", platform=platform, token=secure_token, to_masked=phone_masked)
    if plain_phone and len(normalize_phone(plain_phone)) >= 7:
        return Recipient("gateway", phone_hash=phone_hash(plain_phone, key), to_masked=mask_phone(plain_phone))
    return Recipient("none", to_masked=phone_masked)
