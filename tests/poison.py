"""Bad raw.orders values of every kind, and good Taobao pages that move orders along, for dead-letter tests."""
from __future__ import annotations

import json
from pathlib import Path

from connectors.runtime.records import raw_record
from schemas.codec import AvroCodec

SAMPLES = Path(__file__).parents[1] / "connectors" / "platforms"
TAOBAO_PAGE = (SAMPLES / "taobao" / "samples" / "trades_sold_increment_get.json").read_bytes()
SHOPIFY_PAGE = (SAMPLES / "shopify" / "samples" / "orders_list.json").read_bytes()
GOOD_RECORD = raw_record("taobao", "home", TAOBAO_PAGE, source="poll")


def raw(body: bytes, platform: str = "taobao", content_type: str = "json", shop: str = "home") -> bytes:
    return raw_record(platform, shop, body, source="poll", content_type=content_type)


def taobao_page(step: int) -> bytes:
    """The sample's three trades; from step 1 on the first one's buyer message changes at each step
    (one OrderUpdated per step, the first page gives 9 events)."""
    page = json.loads(TAOBAO_PAGE)
    if step:
        trade = page["trades_sold_increment_get_response"]["trades"]["trade"][0]
        trade["buyer_message"] = f"step {step}"
        trade["modified"] = f"2024-03-19 {step // 3600:02d}:{step // 60 % 60:02d}:{step % 60:02d}"
    return json.dumps(page).encode()


def huge_payment() -> bytes:
    page = json.loads(TAOBAO_PAGE)
    page["trades_sold_increment_get_response"]["trades"]["trade"][0]["payment"] = "99999999999999999999.00"
    return json.dumps(page).encode()


BAD = {  # name -> (value, stage, words of the reason)
    "null": (None, "decode", "null value"),
    "empty": (b"", "decode", "not an Avro RawRecord"),
    "random bytes": (b"\x8f\x00garbage\xff", "decode", "not an Avro RawRecord"),
    "truncated avro": (GOOD_RECORD[:40], "decode", "corrupt RawRecord"),
    "unknown fingerprint": (b"\xc3\x01" + b"\x00" * 8 + GOOD_RECORD[10:], "decode", "unknown schema fingerprint"),
    "another schema": (AvroCodec("ConnectorCall").header + b"\x02x", "decode", "RawRecord"),
    "unknown platform": (raw(TAOBAO_PAGE, platform="nosuchplatform"), "map", "unknown platform 'nosuchplatform'"),
    "bad utf-8 json": (raw(b'{"trades_sold_get_response": "\xff\xfe"}'), "map", "malformed JSON"),
    "bad utf-8 shopify": (raw(b"\xff\xfe{", platform="shopify"), "map", "malformed JSON"),
    "bad xml": (raw(b"<trades_sold_get_response><total", content_type="xml"), "map", "malformed XML"),
    "list page saying 5, carrying none": (raw(b'{"trades_sold_get_response": {"total_results": 5}}'),
                                          "map", "does not say the page is empty"),
    "list page saying nothing": (raw(b'{"trades_sold_increment_get_response": {"trades": null}}'),
                                 "map", "does not say the page is empty"),
    "wrong shape": (raw(b'{"orders": {"id": 1}}', platform="shopify"), "map", "'orders' is not a list"),
    "order lacking fields": (raw(b'{"order": {"id": 7}}', platform="shopify"), "map", "missing required"),
    "amount Avro cannot hold": (raw(huge_payment()), "derive", "does not fit an Avro long"),
}
