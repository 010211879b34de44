"""Building RawRecord values and their keys (raw.orders is keyed by shop)."""
from __future__ import annotations

import time
import uuid
from functools import cache

from connectors import platforms
from schemas.codec import AvroCodec
from schemas.sealing import Sealer, default_sealer


@cache
def _codec(name: str) -> AvroCodec:
    return AvroCodec(name)  # created on first use, after the process chose its wire format


def raw_record(platform: str, shop_id: str, body: bytes, *, source: str, content_type: str = "json",
               kind: str = "order", endpoint: str | None = None, page: str | None = None,
               request_id: str | None = None, api_version: str | None = None,
               external_id: str | None = None, sealer: Sealer | None = None) -> bytes:
    """An encoded RawRecord: the body exactly as received plus where it came from.

    The body is sealed (schemas/sealing.py) when the platform's bodies may hold personal data, by `sealer`
    or else by this process's keys (`TONGLU_RAW_KEYS`); with no key configured it stays plain.
    """
    record_id = uuid.uuid4().hex
    sealer = sealer or default_sealer()
    seal = None
    if sealer is not None and platforms.raw_body_personal(platform):
        body, seal = sealer.seal(body, record_id, platform, shop_id)
    return _codec("RawRecord").encode({
        "record_id": record_id, "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "kind": kind, "source": source, "content_type": content_type, "body": body,
        "fetched_at": int(time.time() * 1000), "api_version": api_version, "endpoint": endpoint,
        "request_id": request_id, "page": page, "seal": seal,
    })


def raw_fetched_at(value: bytes) -> int:
    """The fetched_at (epoch ms) of an encoded RawRecord."""
    return _codec("RawRecord").decode(value)["fetched_at"]


def connector_call(record: dict) -> bytes:
    return _codec("ConnectorCall").encode(record)
