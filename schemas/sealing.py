"""Envelope encryption of RawRecord bodies: buyers' data is sealed in raw.orders and opened only where mapped.

A body is encrypted with AES-256-GCM under a data key; the data key is wrapped by a key-encryption
key (KEK) from a `KeyProvider` — `EnvKeyProvider` (`TONGLU_RAW_KEYS`) or a KMS plugged in through
`TONGLU_RAW_KEY_PROVIDER`. The record's `seal` carries the KEK id, the wrapped data key and the
nonce; the additional authenticated data is the record's identity (record_id, platform, shop_id),
so a body moved onto another record does not open. A `Sealer` keeps one data key for up to
`max_records` records or `max_age_s` seconds (one wrap — one KMS call — per data key, not per
record); an `Opener` caches unwrapped data keys, so opening costs one AES-GCM decryption.

Rotation: put a new KEK first in the provider; it wraps every new data key, and the older KEKs,
still listed, unwrap what they wrapped before.
"""
from __future__ import annotations

import base64
import binascii
import importlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from schemas.codec import DecodeError

ALG = "A256GCM"
KEYS_ENV = "TONGLU_RAW_KEYS"
PROVIDER_ENV = "TONGLU_RAW_KEY_PROVIDER"
PLAINTEXT_ENV = "TONGLU_RAW_PLAINTEXT"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SealError(DecodeError):
    """A sealed body that cannot be opened (unknown key id, wrong key, tampered or swapped record)."""


class KeyConfigError(ValueError):
    """Key configuration that cannot be used; the message says which part and why."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with key-encryption keys it never hands out.

    A KMS plugs in by implementing these two calls (e.g. AWS KMS Encrypt/Decrypt, Alibaba Cloud
    KMS, Vault transit) in a module of its own and naming a factory returning it in
    `TONGLU_RAW_KEY_PROVIDER=package.module:factory`.
    """

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """(id of the KEK used, wrapped data key) — always with the current (first) KEK."""

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """The data key; raises SealError if `key_id` is unknown or `wrapped` does not unwrap."""


class EnvKeyProvider:
    """KEKs given as `kid1:base64key,kid0:base64key` (32-byte keys): the first wraps, all unwrap.

    Data keys are wrapped with AES Key Wrap (RFC 3394), which also authenticates them.
    """

    def __init__(self, spec: str):
        self.keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            kid, sep, b64 = part.partition(":")
            if not sep or not _KEY_ID.match(kid):
                raise KeyConfigError(f"{KEYS_ENV}: expected kid:base64key, key ids of [A-Za-z0-9._-]; got {kid!r}")
            try:
                key = base64.b64decode(b64, validate=True)
            except binascii.Error:
                raise KeyConfigError(f"{KEYS_ENV}: key {kid!r} is not base64") from None
            if len(key) != 32:
                raise KeyConfigError(f"{KEYS_ENV}: key {kid!r} has {len(key)} bytes, AES-256 needs 32")
            if kid in self.keys:
                raise KeyConfigError(f"{KEYS_ENV}: key id {kid!r} appears twice")
            self.keys[kid] = key
        if not self.keys:
            raise KeyConfigError(f"{KEYS_ENV}: no key given")
        self.current = next(iter(self.keys))

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.current, aes_key_wrap(self.keys[self.current], data_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        kek = self.keys.get(key_id)
        if kek is None:
            raise SealError(f"sealed with key {key_id!r}, which is not configured (known: {', '.join(self.keys)})")
        try:
            return aes_key_unwrap(kek, wrapped)
        except InvalidUnwrap:
            raise SealError(f"data key does not unwrap with key {key_id!r}") from None


def new_key_spec(key_id: str, key: bytes | None = None) -> str:
    """`kid:base64key` for a fresh (or the given) 32-byte key, as `TONGLU_RAW_KEYS` lists them."""
    if not _KEY_ID.match(key_id):
        raise KeyConfigError(f"key id {key_id!r}: use 1-64 of [A-Za-z0-9._-]")
    return f"{key_id}:{base64.b64encode(key or AESGCM.generate_key(256)).decode()}"


def aad(record_id: str, platform: str, shop_id: str) -> bytes:
    """The identity a sealed body is bound to (length-prefixed, so no two identities share bytes)."""
    parts = [p.encode() for p in ("tonglu.RawRecord/1", record_id, platform, shop_id)]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


class Sealer:
    """Seals bodies under a data key that is replaced after `max_records` records or `max_age_s` seconds."""

    def __init__(self, provider: KeyProvider, max_records: int = 10_000, max_age_s: float = 300.0, clock=time.monotonic):
        self.provider, self.max_records, self.max_age_s, self.clock = provider, max_records, max_age_s, clock
        self._lock = threading.Lock()
        self._aead = None
        self._used = 0
        self._born = 0.0
        self.data_keys = 0  # how many data keys this sealer made (each one wrap)

    def seal(self, body: bytes, record_id: str, platform: str, shop_id: str) -> tuple[bytes, dict]:
        """(ciphertext with tag, the record's `seal`)."""
        with self._lock:
            if self._aead is None or self._used >= self.max_records or self.clock() - self._born >= self.max_age_s:
                data_key = AESGCM.generate_key(256)
                self._key_id, self._wrapped = self.provider.wrap(data_key)
                self._aead, self._used, self._born = AESGCM(data_key), 0, self.clock()
                self.data_keys += 1
            self._used += 1
            aead, key_id, wrapped = self._aead, self._key_id, self._wrapped
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, body, aad(record_id, platform, shop_id))
        return sealed, {"alg": ALG, "key_id": key_id, "wrapped_key": wrapped, "nonce": nonce}


class Opener:
    """Opens sealed RawRecords, keeping the last `cache_size` unwrapped data keys."""

    def __init__(self, provider: KeyProvider | None, cache_size: int = 256):
        self.provider, self.cache_size = provider, cache_size
        self._aeads: OrderedDict[tuple[str, bytes], AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, raw: Mapping) -> bytes:
        """The body of a decoded RawRecord in clear; raises SealError if it does not open."""
        seal = raw.get("seal")
        if seal is None:
            return raw["body"]
        if seal["alg"] != ALG:
            raise SealError(f"unknown seal algorithm {seal['alg']!r}")
        if self.provider is None:
            raise SealError(f"body sealed with key {seal['key_id']!r} but no key is configured ({KEYS_ENV})")
        try:
            return self._aead(seal["key_id"], seal["wrapped_key"]).decrypt(
                seal["nonce"], raw["body"], aad(raw["record_id"], raw["platform"], raw["shop_id"]))
        except InvalidTag:
            raise SealError("sealed body does not open: tampered, or not this record's body") from None
        except ValueError as exc:  # e.g. a nonce of the wrong length
            raise SealError(f"sealed body does not open: {exc}") from None

    def _aead(self, key_id: str, wrapped: bytes) -> AESGCM:
        cache_key = (key_id, bytes(wrapped))
        with self._lock:
            aead = self._aeads.get(cache_key)
            if aead is not None:
                self._aeads.move_to_end(cache_key)
                return aead
        aead = AESGCM(self.provider.unwrap(key_id, wrapped))
        with self._lock:
            self._aeads[cache_key] = aead
            if len(self._aeads) > self.cache_size:
                self._aeads.popitem(last=False)
        return aead


def provider_from_env(environ: Mapping[str, str] | None = None) -> KeyProvider | None:
    """The KeyProvider configured by `TONGLU_RAW_KEY_PROVIDER` (module:factory) or `TONGLU_RAW_KEYS`; None if neither."""
    environ = os.environ if environ is None else environ
    plugin = (environ.get(PROVIDER_ENV) or "").strip()
    if plugin:
        module, sep, factory = plugin.partition(":")
        if not sep:
            raise KeyConfigError(f"{PROVIDER_ENV}: expected package.module:factory, got {plugin!r}")
        try:
            return getattr(importlib.import_module(module), factory)()
        except (ImportError, AttributeError) as exc:
            raise KeyConfigError(f"{PROVIDER_ENV}={plugin}: {exc}") from None
    spec = (environ.get(KEYS_ENV) or "").strip()
    return EnvKeyProvider(spec) if spec else None


def plaintext_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """`TONGLU_RAW_PLAINTEXT=1`: an operator chose to keep raw bodies in clear when no key is configured."""
    return ((os.environ if environ is None else environ).get(PLAINTEXT_ENV) or "").strip() == "1"


@cache
def default_sealer() -> Sealer | None:
    """This process's sealer from the environment (None: no key configured, bodies stay plain)."""
    provider = provider_from_env()
    return None if provider is None else Sealer(provider)


@cache
def default_opener() -> Opener:
    """This process's opener from the environment (without keys it opens only plain bodies)."""
    return Opener(provider_from_env())


def open_body(raw: Mapping, opener: Opener | None = None) -> bytes:
    """The body of a decoded RawRecord in clear (plain records as they are); raises SealError."""
    if raw.get("seal") is None:
        return raw["body"]
    return (opener or default_opener()).open(raw)
