"""Benchmark input: realistic Taobao increment pages (100 trades each) for many shops (every platform's
pages: `platforms_bench.mixed_pages`)."""
from __future__ import annotations

import json
import time

from connectors.platforms.taobao.render import trade_dict
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from schemas.topics import shop_key


def taobao_pages(orders: int, shops: int = 8, page_size: int = 100, seed: int = 11,
                 start_ms: int | None = None) -> list[tuple[bytes, str, bytes]]:
    """(key, shop_id, body) per page; orders are new, paid, some shipped or refunded."""
    world = World(seed=seed)
    now = start_ms or int(time.time() * 1000) - 3600_000
    pages = []
    per_shop = max(1, orders // shops)
    for s in range(shops):
        shop = f"bench-shop-{s}"
        made = world.create_orders(shop, per_shop, now)
        for i, order in enumerate(made):
            if i % 3 == 0:
                world.step(order, now + 60_000)
        for i in range(0, len(made), page_size):
            trades = [trade_dict(o) for o in made[i:i + page_size]]
            body = json.dumps({"trades_sold_increment_get_response": {
                "has_next": i + page_size < len(made), "trades": {"trade": trades},
                "request_id": f"bench{s}-{i}"}}, ensure_ascii=False).encode()
            pages.append((shop_key("taobao", shop), shop, body))
    return pages


def single_order_records(orders: int, seed: int = 12) -> list[tuple[bytes, bytes]]:
    """One RawRecord per order (a trade.fullinfo.get body): the shape a per-message pipeline sees."""
    world = World(seed=seed)
    now = int(time.time() * 1000) - 3600_000
    out = []
    for n, order in enumerate(world.create_orders("bench-single", orders, now)):
        body = json.dumps({"trade_fullinfo_get_response": {"trade": trade_dict(order), "request_id": str(n)}},
                          ensure_ascii=False).encode()
        out.append((shop_key("taobao", "bench-single"), raw_record("taobao", "bench-single", body, source="poll")))
    return out


def encode_pages(pages) -> list[tuple[bytes, bytes, str]]:
    """(key, RawRecord value, record_id) stamped now, of (key, shop, body) Taobao pages or (key, shop, body,
    platform) pages of any platform (JSON list answers)."""
    from schemas.codec import AvroCodec

    codec = AvroCodec("RawRecord")
    out = []
    for key, shop, body, *platform in pages:
        value = raw_record(platform[0] if platform else "taobao", shop, body, source="poll")
        out.append((key, value, codec.decode(value)["record_id"]))
    return out
