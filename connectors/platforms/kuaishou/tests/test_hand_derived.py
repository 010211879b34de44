"""The recorded detail and a refunded order of the recorded list, their canonical orders worked out by
hand from the payload and kuaishou.md (not recorded from the mapping): a mapping bug cannot hide here."""
from datetime import datetime
from pathlib import Path

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SHOP = "tonglu-kuaishou-home"


def _utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def test_open_order_detail_by_hand():
    (got,) = map_payload((SAMPLES / "open_order_detail.json").read_bytes(), "json", SHOP)
    assert got == {
        "order_id": "kuaishou:tonglu-kuaishou-home:2414900123456789",  # "{platform}:{shop}:{oid}"
        "platform": "kuaishou", "shop_id": SHOP, "external_id": "2414900123456789",
        "status": "PAID",                 # §5: 30 已付款/待发货 -> PAID; packageNum 0 of 1: nothing sent
        "refund_status": "NONE",          # orderRefundList []
        "platform_status": "30",
        # §5: Unix ms, already UTC: 1710728100000 = 2024-03-18 10:15:00 in Beijing
        "created_at": _utc_ms("2024-03-18T10:15:00+08:00"),
        "paid_at": _utc_ms("2024-03-18T10:16:00+08:00"),      # payTime 1710728160000
        "updated_at": _utc_ms("2024-03-18T10:16:01+08:00"),   # updateTime 1710728161000
        "shipped_at": None, "delivered_at": None,             # sendTime 0, recvTime 0
        "currency": "CNY",
        "items_total": 7980,     # num 2 × price 3990 fen
        "shipping_fee": 0,       # expressFee 0
        "discount_total": 600,   # discountFee 600
        "tax_total": 0,          # no orderTaxInfo
        "paid_total": 7380,      # totalFee 7380 = 7980 + 0 − 600 + 0
        "buyer": {"id": "f19c8d3e2b7a4c6e",   # buyerOpenId
                  "nick_masked": "快***",       # buyerNick "快***友" (5 characters): first + "***"
                  "message": None},             # remark ""
        "receiver": {
            "name_masked": "张*",            # desensitiseConsignee, already masked
            "phone_masked": "138****1111",   # desensitiseMobile, already masked
            "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
            # street = town "文新街道" + desensitiseAddress "文***路***号" (4 + 9 characters): first 2 kept
            "address_masked": "文新" + "*" * 11,
            "postal_code": None,
            "secure_token": "#vQ2mL9xK3pR7tB1nW5yZ0cF4hJ6gD8sA#,#Pk7eH2jM9qT4vX1zB6nC3wR8yL5uG0fS#,"
                            "#Zt4kQ8pW2mX6vB9nR1yL5cH3jF7gD0sK#",   # the three ciphertexts, never decrypted
            "phone_valid": True,      # a mainland mobile mask
            "address_vague": False,   # road and number markers
        },
        # one item per order: orderItemInfo; total = 2 × 3990 − item discountFee 600
        "lines": [{"line_id": "214455667777", "sku_id": "2233445566778", "merchant_sku": "TL-MUG-350-WHT",
                   "title": "同路陶瓷马克杯 350ml", "quantity": 2, "unit_price": 3990, "total": 7380,
                   "discount": 600, "refund_status": "NONE"}],
        "shipments": [],          # orderLogisticsInfo []
        "version": 0,
        "refunded_total": 0,
    }


def test_the_refunded_order_of_the_list_by_hand():
    orders = map_payload((SAMPLES / "open_order_cursor_list.json").read_bytes(), "json", SHOP)
    got = next(o for o in orders if o["external_id"] == "2414700555666777")
    # status 80 交易关闭 -> CANCELLED; refundStatus 60 退款成功 -> REFUNDED, the whole 4500 fen line
    assert (got["status"], got["refund_status"], got["refunded_total"]) == ("CANCELLED", "REFUNDED", 4500)
    assert got["created_at"] == _utc_ms("2024-03-16T17:06:40+08:00")  # 1710580000000
    assert got["paid_at"] == _utc_ms("2024-03-16T17:07:30+08:00")     # 1710580050000
    # "建国门外街道" + "建国路**号院*号楼": 6 + 10 characters, first 2 kept
    assert got["receiver"]["address_masked"] == "建国" + "*" * 14
    shipped = next(o for o in orders if o["external_id"] == "2414800987654321")
    # status 40, one package of one: SHIPPED; expressCode 4 is 中通 (manifest carriers)
    assert (shipped["status"], shipped["shipped_at"]) == ("SHIPPED", _utc_ms("2024-03-18T09:40:00+08:00"))
    assert shipped["shipments"] == [{"carrier": "中通快递", "tracking_no": "78451236987412",
                                     "shipped_at": _utc_ms("2024-03-18T09:40:00+08:00"),
                                     "line_ids": ["214455671177"]}]


def test_the_edge_sample_by_hand():
    orders = {o["external_id"]: o for o in map_payload(
        (SAMPLES / "open_order_cursor_list_edges.json").read_bytes(), "json", SHOP)}
    # oid 9007199254740993 = 2^53 + 1 as a bare number: a double would read ...992
    split = orders["9007199254740993"]
    assert (split["status"], split["platform_status"]) == ("PARTIALLY_SHIPPED", "30")  # packageNum 1 of 2
    assert split["created_at"] == _utc_ms("2024-12-31T23:59:59+08:00")   # new year's eve in Beijing
    assert split["paid_at"] == _utc_ms("2025-01-01T00:00:00+08:00")      # midnight, 2024-12-31T16:00Z
    assert (split["items_total"], split["discount_total"], split["paid_total"]) == (2 * 4500, 600, 8400)
    assert split["receiver"]["phone_masked"] == "170****5678-****"       # a virtual number's extension starred
    assert split["shipments"][0]["carrier"] == "顺丰速运"                    # expressCode 1
    asked = orders["9123456789012345678"]                                  # 19 digits, exact
    assert (asked["status"], asked["refund_status"]) == ("PAID", "REQUESTED")  # refundStatus 10 before shipping
    assert (asked["items_total"], asked["shipping_fee"], asked["paid_total"]) == (3990, 600, 4590)
    assert asked["buyer"]["message"] == "到了打电话 138****5678"
    returned = orders["2415000111222333"]                                  # status 40 + refundStatus 20
    assert (returned["status"], returned["refund_status"], returned["refunded_total"]) == ("SHIPPED", "REQUESTED", 0)
    closed = orders["2415000111222444"]                                    # status 80 + refundStatus 60 after delivery
    assert (closed["status"], closed["refund_status"], closed["refunded_total"]) == ("CANCELLED", "REFUNDED", 12800)
    assert closed["delivered_at"] == _utc_ms("2024-12-31T07:06:40+08:00")  # recvTime 1735600000000
