"""Per-shop rule settings from one readable TOML file (infra/anomaly_rules.toml).

`[defaults.<rule>]` tables set every shop's settings; `[shops."platform:shop_id".<rule>]` tables
override single keys for one shop. The whole file is validated at start-up into frozen objects;
anything wrong raises `RuleConfigError` with one line naming the bad key. The hot path only reads
attributes of the frozen objects (no validation per event).
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "infra" / "anomaly_rules.toml"
RULE_IDS = ("zero_amount", "amount_mismatch", "duplicate_order", "invalid_address", "invalid_phone",
            "price_anomaly", "quantity_spike", "ship_overdue", "parcel_exception", "parcel_returned",
            "parcel_stalled", "changed_after_shipment")


class RuleConfigError(ValueError):
    """The anomaly rule configuration is unusable; the message names the file and the bad key."""


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    severity: Literal["info", "warning", "critical"] = "warning"
    action: Literal["flag", "hold"] = "flag"


class ZeroAmount(_Rule):
    severity: Literal["info", "warning", "critical"] = "critical"
    action: Literal["flag", "hold"] = "hold"
    gift_markers: tuple[str, ...] = ("赠品", "赠送", "gift", "freebie")


class AmountMismatch(_Rule):
    action: Literal["flag", "hold"] = "hold"
    tolerance: dict[str, int] = Field(default_factory=lambda: {"CNY": 1, "USD": 1, "EUR": 1, "JPY": 1})
    default_tolerance: int = Field(1, ge=0)

    def tolerance_for(self, currency: str) -> int:
        """Allowed difference in minor units of `currency`."""
        return self.tolerance.get(currency, self.default_tolerance)


class DuplicateOrder(_Rule):
    action: Literal["flag", "hold"] = "hold"
    window_minutes: float = Field(10, gt=0, le=7 * 24 * 60)


class InvalidAddress(_Rule):
    action: Literal["flag", "hold"] = "hold"


class InvalidPhone(_Rule):
    pass


class PriceAnomaly(_Rule):
    severity: Literal["info", "warning", "critical"] = "critical"
    action: Literal["flag", "hold"] = "hold"
    ratio: float = Field(0.3, gt=0, lt=1)
    min_samples: int = Field(20, ge=1)


class QuantitySpike(_Rule):
    factor: float = Field(5, gt=1)
    min_quantity: int = Field(10, ge=1)
    min_samples: int = Field(20, ge=1)


class ShipOverdue(_Rule):
    promise_hours: float = Field(48, gt=0)


class ParcelException(_Rule):
    pass


class ParcelReturned(_Rule):
    severity: Literal["info", "warning", "critical"] = "critical"


class ParcelStalled(_Rule):
    stall_hours: float = Field(48, gt=0)


class ChangedAfterShipment(_Rule):
    pass


class ShopRules(BaseModel):
    """Every rule's settings for one shop."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    zero_amount: ZeroAmount = ZeroAmount()
    amount_mismatch: AmountMismatch = AmountMismatch()
    duplicate_order: DuplicateOrder = DuplicateOrder()
    invalid_address: InvalidAddress = InvalidAddress()
    invalid_phone: InvalidPhone = InvalidPhone()
    price_anomaly: PriceAnomaly = PriceAnomaly()
    quantity_spike: QuantitySpike = QuantitySpike()
    ship_overdue: ShipOverdue = ShipOverdue()
    parcel_exception: ParcelException = ParcelException()
    parcel_returned: ParcelReturned = ParcelReturned()
    parcel_stalled: ParcelStalled = ParcelStalled()
    changed_after_shipment: ChangedAfterShipment = ChangedAfterShipment()


class Engine(BaseModel):
    """Detector-wide settings (state sizes), not per shop."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku_window: int = Field(200, ge=10, le=10_000)


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    engine: Engine = Engine()
    defaults: dict = Field(default_factory=dict)
    shops: dict[str, dict] = Field(default_factory=dict)


class RuleBook:
    """Validated settings: `for_shop(platform, shop_id)` gives the (cached) ShopRules of a shop."""

    def __init__(self, defaults: ShopRules, shops: dict[str, ShopRules], engine: Engine):
        self.defaults, self.shops, self.engine = defaults, shops, engine
        self._cache: dict[tuple[str, str], ShopRules] = {}

    @classmethod
    def default(cls) -> RuleBook:
        """The built-in defaults (the same values infra/anomaly_rules.toml spells out)."""
        return cls(ShopRules(), {}, Engine())

    def for_shop(self, platform: str, shop_id: str) -> ShopRules:
        """The settings of one shop: its overrides if any, else the defaults."""
        key = (platform, shop_id)
        rules = self._cache.get(key)
        if rules is None:
            rules = self._cache[key] = self.shops.get(f"{platform}:{shop_id}", self.defaults)
        return rules


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _validate(model, data, where: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join([where] + [str(part) for part in err["loc"]]).strip(".")
        raise RuleConfigError(f"{key}: {err['msg']}") from None


def parse_rules(data: dict) -> RuleBook:
    """Validate an already parsed config mapping (the TOML document) into a RuleBook."""
    top = _validate(_File, data, "")
    defaults = _validate(ShopRules, top.defaults, "defaults")
    shops = {}
    for key, override in top.shops.items():
        platform, sep, shop_id = key.partition(":")
        if not (sep and platform and shop_id):
            raise RuleConfigError(f'shops."{key}": shop keys are "platform:shop_id"')
        if not isinstance(override, dict):
            raise RuleConfigError(f'shops."{key}": must be a table of rule settings')
        shops[key] = _validate(ShopRules, _merge(top.defaults, override), f'shops."{key}"')
    return RuleBook(defaults, shops, top.engine)


def load_rules(path: str | Path | None = None) -> RuleBook:
    """Read and validate the rule file (default infra/anomaly_rules.toml); RuleConfigError if bad."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_rules(data)
    except RuleConfigError as exc:
        raise RuleConfigError(f"{path}: {exc}") from None
