"""The JD API facts of api.toml (error codes, token lifetime, separators, field names): data the sheet
leaves unverified, read by the client, the mapping and the simulator."""
from __future__ import annotations

import tomllib
from pathlib import Path

_DATA = tomllib.loads((Path(__file__).parent / "api.toml").read_text(encoding="utf-8"))
ERRORS: dict[str, list[str]] = _DATA["error_codes"]
BUSINESS_ERRORS: dict[str, list[int]] = _DATA["business_errors"]
TOKEN_LIFETIME_S: int = _DATA["token"]["lifetime_s"]
OAUTH_BASE: str = _DATA["token"]["oauth_base"]
_FORMATS = _DATA["formats"]
MASKED_MOBILE: str = _FORMATS["masked_mobile_field"]
EXTENSION: str = _FORMATS["extension_separator"]
WAYBILLS: str = _FORMATS["waybill_separator"]
COUPONS: str = _FORMATS["coupon_detail"]
BALANCE_IN_PAYMENT: bool = _FORMATS["balance_in_payment"]
REFUND_APPLY_STATUSES: dict[str, str] = _DATA["refund_apply_statuses"]
SHIPMENT_REFUSALS: dict[str, str] = _DATA["shipment_refusals"]
