"""A stand-in for JD's TDE (data-encryption SDK) in the simulator and the tests: deterministic
ciphertexts shaped like the real ones (base64 of whole 16-byte blocks), which only the holder of the
key can turn back. The mapping never calls it: receivers stay ciphertext in canonical orders.
"""
from __future__ import annotations

import base64
import hashlib

DEMO_KEY = "jd_tde_demo_key"
_BLOCK = 16


def _stream(key: str, size: int) -> bytes:
    out, n = b"", 0
    while len(out) < size:
        out += hashlib.sha256(f"{key}:{n}".encode()).digest()
        n += 1
    return out[:size]


def encrypt(plain: str, key: str = DEMO_KEY) -> str:
    """The ciphertext of `plain`: the same text under the same key gives the same ciphertext (the
    fixtures show `telephone` and `mobile` of one receiver as one ciphertext)."""
    data = plain.encode("utf-8")
    pad = _BLOCK - len(data) % _BLOCK
    data += bytes([pad]) * pad
    return base64.b64encode(bytes(a ^ b for a, b in zip(data, _stream(key, len(data)), strict=True))).decode()


def decrypt(cipher: str, key: str = DEMO_KEY) -> str:
    """The plaintext of a ciphertext made by `encrypt` (ValueError when it is not one)."""
    data = base64.b64decode(cipher, validate=True)
    if not data or len(data) % _BLOCK:
        raise ValueError("not a TDE ciphertext")
    plain = bytes(a ^ b for a, b in zip(data, _stream(key, len(data)), strict=True))
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("not a TDE ciphertext of this key")
    return plain[:-pad].decode("utf-8")
