"""Plain canonical orders for tests (valid against schemas/tonglu.Order.avsc)."""
from __future__ import annotations

import copy

BASE_MS = 1_710_727_092_000  # 2024-03-18T01:58:12Z


def canonical_order(external_id: str = "1001", shop_id: str = "shop1", platform: str = "taobao",
                    status: str = "PAID", updated_at: int = BASE_MS, **overrides) -> dict:
    order = {
        "order_id": f"{platform}:{shop_id}:{external_id}", "platform": platform, "shop_id": shop_id,
        "external_id": external_id, "status": status, "refund_status": "NONE",
        "platform_status": "WAIT_SELLER_SEND_GOODS", "created_at": BASE_MS - 60_000,
        "paid_at": BASE_MS - 30_000 if status != "PENDING_PAYMENT" else None, "updated_at": updated_at,
        "shipped_at": None, "delivered_at": None, "currency": "CNY", "items_total": 16980,
        "shipping_fee": 0, "discount_total": 1200, "tax_total": 0, "paid_total": 15780,
        "buyer": {"id": "AAGvBxk2AAE3fEnKPdxwRr4w", "nick_masked": None, "message": "请尽快发货"},
        "receiver": {"name_masked": "张*", "phone_masked": "138****1111", "country": "CN", "province": "浙江省",
                     "city": "杭州市", "district": "西湖区", "address_masked": "文新******", "postal_code": "310012",
                     "secure_token": "1aQnJ0dpbOvg7", "phone_valid": True, "address_vague": False},
        "lines": [
            {"line_id": "1", "sku_id": "501", "merchant_sku": "TL-MUG", "title": "马克杯", "quantity": 2,
             "unit_price": 3990, "total": 7380, "discount": 600, "refund_status": "NONE"},
            {"line_id": "2", "sku_id": "502", "merchant_sku": "TL-TOWEL", "title": "浴巾", "quantity": 1,
             "unit_price": 9000, "total": 8400, "discount": 600, "refund_status": "NONE"},
        ],
        "shipments": [], "version": 0, "refunded_total": 0,
    }
    order.update(overrides)
    return order


def changed(order: dict, minutes: int = 1, **overrides) -> dict:
    """A later platform snapshot of the same order."""
    new = copy.deepcopy(order)
    new["updated_at"] = order["updated_at"] + minutes * 60_000
    new.update(overrides)
    return new
