"""The connector conformance suite: every platform folder passes the same checks.

A platform provides: `mapping.map_payload`, `render.page_body(orders, plaintext=False)` (receivers in
clear with `plaintext=True`, as an app authorised to read them gets them), `simulator.create_app()`,
its client (named in `connectors.platforms.CLIENT_CLASSES`) and `samples/` with expected output.
"""
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from connectors import platforms
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.simkit.server import WORLD, ensure_shop
from infra.broker import free_port
from schemas import registry
from schemas.canonical import MappingError, order_json
from schemas.free_text import mask_free_text
from schemas.model import Order

PLATFORMS = sorted({name for name, package in platforms.PACKAGES.items() if name == package.rsplit(".", 1)[1]})


def _samples(platform: str):
    folder = Path(platforms.module(platform, "mapping").__file__).parent / "samples"
    for expected in sorted(folder.glob("*.expected.json")):
        stem = expected.name[: -len(".expected.json")]
        source = next((p for p in (folder / stem, folder / f"{stem}.json") if p.is_file()), None)
        if source is not None:
            yield platform, source, expected


SAMPLES = [s for p in PLATFORMS for s in _samples(p)]
MESSAGES = ("到了打电话 138 1234 5678", "身份证33010619900101123X清关用", "送到文三路477号3号楼，座机0571-88886666",
            "请尽快发货", "call me +86 139-8765-4321")
MESSAGE_SECRETS = ("138 1234", "33010619900101123X", "477号", "88886666", "139-8765")


@pytest.mark.parametrize("platform,source,expected", SAMPLES, ids=[f"{p}/{s.name}" for p, s, _ in SAMPLES])
def test_recorded_payloads_map_to_their_expected_canonical_orders(platform, source, expected):
    body = source.read_bytes()
    content_type = "xml" if body.lstrip()[:1] == b"<" else "json"
    want = json.loads(expected.read_text(encoding="utf-8"))
    shop = want[0]["shop_id"] if isinstance(want, list) and want else "shop"
    if isinstance(want, dict) and "mapping_error" in want:  # an error answer is refused with its reason
        with pytest.raises(MappingError) as refused:
            platforms.map_payload(platform, body, content_type, shop)
        assert str(refused.value) == want["mapping_error"]
        return
    got = [order_json(o) for o in platforms.map_payload(platform, body, content_type, shop)]
    assert got == want
    for order in platforms.map_payload(platform, body, content_type, shop):
        Order.model_validate(order)
        _assert_exact_fields(order)
        assert order["items_total"] + order["shipping_fee"] - order["discount_total"] + order["tax_total"] \
            == order["paid_total"]


def _fields(record_schema: dict) -> list[str]:
    return [f["name"] for f in record_schema["fields"]]


def _assert_exact_fields(order: dict) -> None:
    """Every field of the contract, in its order, and nothing else, at every level."""
    schema = registry.current("Order")
    by_name = {f["name"]: f["type"] for f in schema["fields"]}
    assert list(order) == _fields(schema)
    for name in ("buyer", "receiver"):
        assert list(order[name]) == _fields(by_name[name])
    for name in ("lines", "shipments"):
        assert all(list(item) == _fields(by_name[name]["items"]) for item in order[name])


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("body", [b"", b"{", b"<not-xml", b"[]]", b'{"unexpected": true}', b"\xff\xfe"])
def test_malformed_payloads_are_mapping_errors(platform, body):
    content_type = "xml" if body[:1] == b"<" else "json"
    with pytest.raises(MappingError):
        platforms.map_payload(platform, body, content_type, "shop")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_simulated_orders_map_consistently_and_without_plaintext(platform):
    app = platforms.module(platform, "simulator").create_app()
    world = app[WORLD]
    orders = world.create_orders("conf", 120, 1_710_000_000_000, paid=False)
    for n, order in enumerate(orders):
        for step in range(n % 6):
            world.step(order, 1_710_000_000_000 + (step + 1) * 60_000)
    for n, order in enumerate(orders):  # what buyers type into the order message
        order.buyer_message = MESSAGES[n % len(MESSAGES)]
    body = platforms.module(platform, "render").page_body(orders, plaintext=True)
    text = body.decode()
    for sim in orders:  # the input really holds the plaintext the output must not
        assert all(json.dumps(s)[1:-1] in text or s in text for s in (sim.receiver_phone, sim.receiver_name,
                                                                        sim.street, sim.buyer_message))
    mapped = platforms.map_payload(platform, body, "json", "conf")
    by_id = {o["external_id"]: o for o in mapped}
    assert set(by_id) == {o.external_id for o in orders}
    for sim in orders:
        order = by_id[sim.external_id]
        Order.model_validate(order)
        assert order["order_id"] == f"{platform}:conf:{sim.external_id}"
        assert order["paid_total"] == sim.paid_total
        assert order["items_total"] + order["shipping_fee"] - order["discount_total"] + order["tax_total"] \
            == order["paid_total"]
        assert sorted(line["quantity"] for line in order["lines"]) == sorted(line.quantity for line in sim.lines)
        assert (order["status"] == "CANCELLED") == (sim.status == "CANCELLED")
        assert (order["paid_at"] is not None) == (sim.paid_at is not None)
        text = json.dumps(order, ensure_ascii=False)
        for secret in (sim.receiver_phone, sim.receiver_name, sim.street, *MESSAGE_SECRETS):
            assert secret not in text, f"plaintext {secret!r} in the canonical order"
        assert order["buyer"]["message"] == mask_free_text(sim.buyer_message)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_client_reads_every_order_from_its_simulator_over_http(platform):
    app = platforms.module(platform, "simulator").create_app()
    shop = ensure_shop(app, "conf-live")
    created = app[WORLD].create_orders("conf-live", 260, __import__("time").time_ns() // 1_000_000 - 60_000)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    calls = []
    try:
        async with aiohttp.ClientSession() as session:
            creds = ShopCredentials(platform=platform, shop_id="conf-live", base_url=f"http://127.0.0.1:{port}",
                                    app_key=shop.get("app_key", ""), app_secret=shop.get("app_secret", ""),
                                    access_token=shop.get("access_token", ""))
            client = platforms.client(creds, HttpCaller(session, platform, "conf-live", on_call=calls.append))
            now = __import__("time").time_ns() // 1_000_000
            seen = set()
            async for page in client.fetch_window(now - 3_600_000, now + 1000):
                seen |= {o["external_id"] for o in platforms.map_payload(platform, page.body, page.content_type,
                                                                          "conf-live")}
            assert seen == {o.external_id for o in created}
            assert calls and all(c["ok"] and c["platform"] == platform for c in calls)
            assert sum(c["records"] for c in calls) >= len(created)
    finally:
        await runner.cleanup()
