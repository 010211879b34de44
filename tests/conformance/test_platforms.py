"""The connector conformance suite: every platform folder the registry finds passes the same checks.

The folder contract (connectors/platforms/README.md): `manifest.toml`, `mapping.map_payload`,
`render.page_body(orders, plaintext=False)` (receivers in clear with `plaintext=True`, as an app
authorised to read them gets them), `render.status_page(order, platform_status, refund_status)`,
`simulator.create_app()`, `client.Client`, `webhooks.authenticate` / `webhooks.signed_headers` when the
platform pushes, and `samples/` with expected output.
"""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import aiohttp
import pytest
from aiohttp import web

from connectors import platforms
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.simkit.server import WORLD, ensure_shop
from infra.broker import free_port
from schemas import registry
from schemas.canonical import TRACKING_FIELDS, MappingError, order_json
from schemas.free_text import mask_free_text
from schemas.model import Order
from tests.conformance.common import (
    PLATFORMS,
    assert_amount_identity,
    content_type,
    expected_orders,
    samples,
    sim_order,
)

SAMPLES = [s for p in PLATFORMS for s in samples(p)]
MESSAGES = ("到了打电话 138 1234 5678", "身份证33010619900101123X清关用", "送到文三路477号3号楼，座机0571-88886666",
            "请尽快发货", "call me +86 139-8765-4321")
MESSAGE_SECRETS = ("138 1234", "33010619900101123X", "477号", "88886666", "139-8765")


@pytest.mark.parametrize("platform,source,expected", SAMPLES, ids=[f"{p}/{s.name}" for p, s, _ in SAMPLES])
def test_recorded_payloads_map_to_their_expected_canonical_orders(platform, source, expected):
    body = source.read_bytes()
    kind = content_type(body)
    want = json.loads(expected.read_text(encoding="utf-8"))
    shop = want[0]["shop_id"] if isinstance(want, list) and want else "shop"
    if isinstance(want, dict) and "mapping_error" in want:  # an error answer is refused with its reason
        with pytest.raises(MappingError) as refused:
            platforms.map_payload(platform, body, kind, shop)
        assert str(refused.value) == want["mapping_error"]
        return
    got = [order_json(o) for o in platforms.map_payload(platform, body, kind, shop)]
    assert got == want
    for order in platforms.map_payload(platform, body, kind, shop):
        Order.model_validate(order)
        _assert_exact_fields(order)
        assert_amount_identity(platform, order)


def _fields(record_schema: dict) -> list[str]:
    return [f["name"] for f in record_schema["fields"]]


def _assert_exact_fields(order: dict) -> None:
    """Every field of the contract, in its order, and nothing else, at every level; of a shipment, the
    platform's part (what the courier-tracking service says is Tonglu's to add, not a mapping's)."""
    schema = registry.current("Order")
    by_name = {f["name"]: f["type"] for f in schema["fields"]}
    assert list(order) == _fields(schema)
    for name in ("buyer", "receiver"):
        assert list(order[name]) == _fields(by_name[name])
    assert all(list(item) == _fields(by_name["lines"]["items"]) for item in order["lines"])
    platform_part = [f for f in _fields(by_name["shipments"]["items"]) if f not in TRACKING_FIELDS]
    assert all(list(item) == platform_part for item in order["shipments"])


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
        assert_amount_identity(platform, order)
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


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_folder_has_every_part_of_the_contract(platform):
    p = platforms.get(platform)
    assert p.manifest.names.zh and p.manifest.names.en
    assert callable(platforms.module(platform, "mapping").map_payload)
    assert callable(platforms.module(platform, "client").Client)
    assert callable(platforms.module(platform, "simulator").create_app)
    render = platforms.module(platform, "render")
    assert callable(render.page_body) and callable(render.status_page)
    assert list(samples(platform)), f"{platform}: no samples/*.expected.json"
    if p.manifest.capabilities.push:
        hooks = platforms.module(platform, "webhooks")
        assert callable(hooks.authenticate) and callable(hooks.signed_headers)
    fields = p.manifest.model_dump()
    for key in p.manifest.unverified:  # each unverified fact names a key the manifest really has
        node = fields
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{platform}: unverified {key!r} is not a manifest key"
            node = node[part]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_status_table_covers_every_status_the_platform_renders(platform):
    """Orders walked through every simulated lifecycle (paid or not, partly shipped, refunds asked, granted
    and refused, cancelled before and after payment), rendered as the platform answers: each platform status
    they carry is in the manifest's table (test_every_status_in_the_manifest_maps renders each status of the
    table; a mapping may refine it by other fields, e.g. a locked JD order that has shipped)."""
    world = platforms.module(platform, "simulator").create_app()[WORLD]
    orders = world.create_orders("conf", 300, 1_710_000_000_000, paid=False)
    for n, order in enumerate(orders):
        for step in range(n % 8):
            world.step(order, 1_710_000_000_000 + (step + 1) * 60_000)
    table = platforms.manifest(platform).statuses
    rendered = platforms.module(platform, "render").page_body(orders)
    seen = set()
    for got in platforms.map_payload(platform, rendered, "json", "conf"):
        seen.add(got["platform_status"])
        assert_amount_identity(platform, got)  # in every state of an order's life
    missing = sorted(set(seen) - set(table))
    assert not missing, f"{platform}: statuses rendered but not in the manifest's [statuses]: {missing}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_status_in_the_manifest_maps(platform):
    """Each documented platform status, in a real-shaped page, maps to what the manifest's table says."""
    m = platforms.manifest(platform)
    render = platforms.module(platform, "render")
    order = sim_order(platform)
    for platform_status, want in m.statuses.items():
        (got,) = platforms.map_payload(platform, render.status_page(order, platform_status=platform_status), "json",
                                       "conf")
        assert (got["platform_status"], got["status"], got["refund_status"]) == \
            (platform_status, want.status, want.refund), platform_status
    for platform_refund, want in m.refund_statuses.items():
        (got,) = platforms.map_payload(platform, render.status_page(order, refund_status=platform_refund), "json",
                                       "conf")
        assert got["refund_status"] == want and {line["refund_status"] for line in got["lines"]} == {want}, \
            platform_refund


@pytest.mark.parametrize("platform", PLATFORMS)
def test_times_utc_ids_exact_strings_and_money_exact(platform):
    """Simulated orders (ids above 2^53) rendered as the platform answers: the mapping gives back the
    world's UTC instants, its ids digit for digit as strings, and its money to the fen/cent."""
    app = platforms.module(platform, "simulator").create_app()
    world = app[WORLD]
    world.id_factory = lambda rng: str(2**53 + 1 + rng.randrange(10**12))
    orders = world.create_orders("conf", 40, 1_735_660_799_000, paid=False)  # 23:59:59 Beijing, new year's eve
    for n, order in enumerate(orders):
        for step in range(n % 5):
            world.step(order, 1_735_660_799_000 + (step + 1) * 3_600_000)
    mapped = {o["external_id"]: o for o in platforms.map_payload(
        platform, platforms.module(platform, "render").page_body(orders), "json", "conf")}
    assert len(mapped) == len(orders)
    for sim in orders:
        got = mapped[sim.external_id]
        assert isinstance(got["external_id"], str) and int(got["external_id"]) > 2**53
        assert got["created_at"] // 1000 == sim.created_at // 1000
        assert got["updated_at"] // 1000 == sim.updated_at // 1000
        assert (got["paid_at"] // 1000 if got["paid_at"] is not None else None) == \
            (sim.paid_at // 1000 if sim.paid_at is not None else None)
        assert order_json(got)["created_at"].endswith("Z")
        assert [(line["line_id"], line["unit_price"], line["total"]) for line in got["lines"]] == \
            [(line.line_id, line.unit_price, line.total) for line in sim.lines]
        assert (got["items_total"], got["shipping_fee"], got["paid_total"]) == \
            (sim.items_total, sim.shipping_fee, sim.paid_total)


@pytest.mark.parametrize("platform", [p for p in PLATFORMS if platforms.manifest(p).capabilities.push])
def test_a_signed_push_is_accepted_and_a_forged_one_refused(platform):
    hooks = platforms.module(platform, "webhooks")
    body = platforms.module(platform, "render").page_body([sim_order(platform)])
    secret_of = {"conf": "s3cret"}.get
    signed = hooks.signed_headers(body, "conf", "s3cret")
    push = hooks.authenticate(signed, body, secret_of)
    assert push is not None and push.shop_id == "conf"
    assert hooks.authenticate(hooks.signed_headers(body, "conf", "forged"), body, secret_of) is None
    assert hooks.authenticate(signed, body + b" ", secret_of) is None
    assert hooks.authenticate({}, body, secret_of) is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_malformed_payload_is_a_one_line_cli_error(platform, tmp_path):
    """`tonglu normalize` on a broken or wrong-shaped body: non-zero exit, one line on stderr, no traceback."""
    for n, body in enumerate((b'{"truncated": ', b"<broken><xml>", b'{"unexpected": true}')):
        path = tmp_path / f"bad{n}"
        path.write_bytes(body)
        run = subprocess.run([sys.executable, "-m", "infra.cli", "normalize", "--platform", platform, "--shop", "s",
                              str(path)], capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode != 0 and run.stdout == "", body
        assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: "), run.stderr
        assert "Traceback" not in run.stderr


XML_SAMPLES = [s for s in SAMPLES if content_type(s[1].read_bytes()) == "xml" and expected_orders(s[2])]


def _list_elements(root: ET.Element, lists: set[str]) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("list") == "true" or (e.tag in lists and len(e))]


@pytest.mark.parametrize("platform,source,expected", XML_SAMPLES, ids=[f"{p}/{s.name}" for p, s, _ in XML_SAMPLES])
def test_an_xml_list_with_one_child_and_no_marker_is_still_a_list(platform, source, expected):
    """Gateways mark XML arrays inconsistently: without any `list="true"` the sample maps exactly as
    recorded, and every list cut down to a single child without the marker still maps (the manifest's
    `xml_lists` names the elements that are arrays)."""
    want = expected_orders(expected)
    shop, lists = want[0]["shop_id"], set(platforms.manifest(platform).xml_lists)
    root = ET.fromstring(source.read_bytes())
    for element in root.iter():
        element.attrib.pop("list", None)
    unmarked = ET.tostring(root, encoding="utf-8")
    assert [order_json(o) for o in platforms.map_payload(platform, unmarked, "xml", shop)] == want
    root = ET.fromstring(source.read_bytes())
    listed = _list_elements(root, lists)
    assert listed, f"{platform}/{source.name}: no list element (list=\"true\" or xml_lists) to check"
    for n in range(len(listed)):
        single = ET.fromstring(source.read_bytes())
        element = _list_elements(single, lists)[n]
        for child in list(element)[1:]:
            element.remove(child)
        element.attrib.pop("list", None)
        got = platforms.map_payload(platform, ET.tostring(single, encoding="utf-8"), "xml", shop)
        assert got and {o["external_id"] for o in got} <= {o["external_id"] for o in want}, element.tag
        for order in got:
            Order.model_validate(order)
            assert order["lines"], f"{element.tag} with one child lost the order's lines"
