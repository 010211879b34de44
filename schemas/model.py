"""Pydantic mirror of the canonical order (schemas/tonglu.Order.avsc), for validation at the edges.

The hot path works on plain dicts; this model validates them where a person or a test looks, and a
test keeps it field-for-field in line with the Avro contract.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

OrderStatus = Literal["PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED",
                      "CANCELLED", "UNKNOWN"]
RefundStatus = Literal["NONE", "REQUESTED", "PARTIALLY_REFUNDED", "REFUNDED", "REJECTED", "UNKNOWN"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Buyer(_Strict):
    id: str | None = None
    nick_masked: str | None = None
    message: str | None = None


class Receiver(_Strict):
    name_masked: str | None = None
    phone_masked: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address_masked: str | None = None
    postal_code: str | None = None
    secure_token: str | None = None
    phone_valid: bool | None = None
    address_vague: bool | None = None


class OrderLine(_Strict):
    line_id: str
    sku_id: str | None = None
    merchant_sku: str | None = None
    title: str
    quantity: int
    unit_price: int
    total: int
    discount: int = 0
    refund_status: RefundStatus


class Shipment(_Strict):
    carrier: str | None = None
    tracking_no: str | None = None
    shipped_at: int | None = None
    line_ids: list[str] = []
    tracking_state: str | None = None
    tracking_status: str | None = None
    tracking_step: str | None = None
    tracking_at: int | None = None
    delivered_at: int | None = None


class Order(_Strict):
    order_id: str
    platform: str
    shop_id: str
    external_id: str
    status: OrderStatus
    refund_status: RefundStatus
    platform_status: str
    created_at: int | None = None
    paid_at: int | None = None
    updated_at: int | None = None
    shipped_at: int | None = None
    delivered_at: int | None = None
    currency: str
    items_total: int
    shipping_fee: int
    discount_total: int
    tax_total: int
    paid_total: int
    buyer: Buyer
    receiver: Receiver
    lines: list[OrderLine]
    shipments: list[Shipment]
    version: int
    refunded_total: int = 0
