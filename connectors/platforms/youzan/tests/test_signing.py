"""Youzan push signatures: the fact sheet's worked example, the recorded pushes, tampering."""
from pathlib import Path

from ..signing import event_sign, message_sign
from ..webhooks import authenticate, signed_headers

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CLIENT, SECRET = "yz_demo_client_01", "yz_demo_secret_42"


def _headers(name: str) -> dict:
    lines = (SAMPLES / name).read_text().splitlines()[1:]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


class Headers(dict):
    """Case-insensitive look-ups, like aiohttp's."""

    def get(self, key, default=None):
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def test_the_worked_example_of_the_fact_sheet():
    msg = "%7B%22tid%22%3A%22E20240318101530012345678%22%7D"
    # md5("yz_demo_client_01" + msg + "yz_demo_secret_42"), computed by hand from youzan.md §2
    assert message_sign(CLIENT, msg, SECRET) == "a0a2d6a14f73be19171bf6789fb8e7bf"
    assert event_sign(CLIENT, msg.encode(), SECRET) == "a0a2d6a14f73be19171bf6789fb8e7bf"


def test_the_recorded_push_with_its_in_body_sign_names_the_shop_by_client_id_or_kdt_id():
    body = (SAMPLES / "push_trade_buyer_pay.json").read_bytes()
    push = authenticate(Headers(), body, {CLIENT: SECRET}.get)
    assert push is not None and (push.shop_id, push.endpoint, push.kind) == (CLIENT, "trade_TradeBuyerPay", "order")
    assert push.request_id == "E20240318101530012345678@1710728161"
    assert authenticate(Headers(), body, {"80012345": SECRET}.get).shop_id == "80012345"
    assert authenticate(Headers(), body, {CLIENT: "other"}.get) is None
    tampered = body.replace(b"%22E2024", b"%22E2025")
    assert authenticate(Headers(), tampered, {CLIENT: SECRET}.get) is None


def test_the_recorded_push_with_its_event_sign_header():
    body = (SAMPLES / "push_trade_seller_ship.json").read_bytes()
    headers = Headers(_headers("push_trade_seller_ship.headers.txt"))
    assert headers.get("event-sign") == event_sign(CLIENT, body, SECRET) == "333688d4e9518dea8a81671928da2b4d"
    push = authenticate(headers, body, {CLIENT: SECRET}.get)
    assert push is not None and push.endpoint == "trade_TradeSellerShip"
    assert authenticate(headers, body + b" ", {CLIENT: SECRET}.get) is None  # the raw bytes are signed
    assert authenticate(headers, body.replace(b'"sendCount": 0', b'"sendCount": 1'), {CLIENT: SECRET}.get) is None
    wrong = Headers(headers, **{"Event-Sign": "0" * 32})
    assert authenticate(wrong, body, {CLIENT: SECRET}.get) is None  # a wrong header is not rescued by the in-body sign


def test_refund_messages_are_refund_pushes_and_unknown_shops_are_refused():
    body = (SAMPLES / "push_refund_success.json").read_bytes()
    headers = Headers(signed_headers(body, CLIENT, SECRET, "trade_refund_RefundSuccess"))
    assert authenticate(headers, body, {CLIENT: SECRET}.get).kind == "refund"
    assert authenticate(headers, body, {}.get) is None
    assert authenticate(Headers(), b"not json", {CLIENT: SECRET}.get) is None
