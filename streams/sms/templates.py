"""SMS templates and triggers per shop (`infra/sms.toml`, `TONGLU_SMS_CONFIG`), checked when loaded.

A template has a kind (service or marketing), an approved sign (`【品牌名】`, 2–12 characters inside the brackets),
the provider's template code per provider or platform channel, and Chinese text with jinja2 variables rendered in a
sandbox. Loading refuses, with one line naming the template: an unknown variable, a missing or malformed sign, and a
marketing template without the opt-out `拒收请回复R`.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.sms.config import ChannelSpec, GatewaySpec, apply_environment
from streams.alerting.config import QuietHours

Kind = Literal["service", "marketing"]
OPT_OUT_TEXT = "拒收请回复R"
# what a template may use; the notifier fills them from the order (never a plain name, phone or street)
VARIABLES = frozenset({"shop_name", "order_no", "amount", "item", "item_count", "carrier", "tracking_no", "step",
                       "eta", "delay_reason", "refund_amount", "member_name", "points", "points_balance"})
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=1024)
def _compiled(text: str):
    """A template's text compiled once: compiling took ~1 ms, rendering a compiled one ~20 µs."""
    return _ENV.from_string(text)


class SmsConfigError(ValueError):
    """The SMS configuration is missing, not TOML, or invalid (one-line message)."""


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    sign: str
    text: str
    codes: dict[str, str] = Field(default_factory=dict)  # provider or platform channel -> its template code

    @model_validator(mode="after")
    def _checked(self) -> Template:
        inner = self.sign[1:-1] if self.sign.startswith("【") and self.sign.endswith("】") else None
        if inner is None or not 2 <= len(inner) <= 12 or "【" in inner or "】" in inner:
            raise ValueError(f"sign {self.sign!r} is not an approved sign like 【品牌名】 (2-12 characters)")
        try:
            used = meta.find_undeclared_variables(_ENV.parse(self.text))
        except TemplateSyntaxError as exc:
            raise ValueError(f"text does not parse: {exc.message}") from None
        unknown = sorted(used - VARIABLES)
        if unknown:
            raise ValueError(f"unknown variable(s) {', '.join(unknown)}; known: {', '.join(sorted(VARIABLES))}")
        if self.kind == "marketing" and OPT_OUT_TEXT not in self.text:
            raise ValueError(f"a marketing template must carry the opt-out {OPT_OUT_TEXT!r}")
        return self

    def render(self, variables: Mapping[str, object]) -> str:
        """The full message: sign, then the text with `variables` filled in (a missing one raises)."""
        return self.sign + _compiled(self.text).render(**variables).strip()


class Caps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    marketing_per_day: int = 1
    marketing_per_week: int = 3
    service_per_day: int = 5


class ShopRules(BaseModel):
    """The rules of one shop (or the defaults every shop inherits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    marketing_hours: str = "08:00-22:00"  # Beijing time unless `timezone` says otherwise
    timezone: str = "Asia/Shanghai"
    queue_max_age_hours: float = 24.0  # a queued marketing message older than this expires
    caps: Caps = Caps()
    daily_budget: int | None = None  # segments per Beijing day for the shop; None: no budget
    require_consent: bool = True  # marketing to members only with their consent flag
    shop_name: str | None = None  # the `shop_name` variable; the shop id when not set
    # an event older than this fires nothing (a replay of old history, a notifier started on a long log)
    trigger_max_age_hours: float = 24.0
    triggers: dict[str, list[str]] = Field(default_factory=dict)  # trigger -> template names

    @model_validator(mode="after")
    def _hours(self) -> ShopRules:
        self.quiet_hours()
        return self

    def quiet_hours(self) -> QuietHours:
        """The complement of the marketing window, as the alert router's quiet hours."""
        start, sep, end = self.marketing_hours.partition("-")
        if not sep:
            raise ValueError(f"marketing_hours {self.marketing_hours!r} is not HH:MM-HH:MM")
        return QuietHours(start=end.strip(), end=start.strip(), timezone=self.timezone)


class SmsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    templates: dict[str, Template]
    defaults: ShopRules = ShopRules()
    shops: dict[str, ShopRules] = Field(default_factory=dict)
    providers: list[str] = Field(default_factory=lambda: ["aliyun", "tencent"])  # gateway failover order
    gateways: dict[str, GatewaySpec] = Field(default_factory=dict)  # provider -> how to reach it
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)  # platform -> its official message channel

    @model_validator(mode="after")
    def _references(self) -> SmsConfig:
        for where, rules in (("defaults", self.defaults), *((f"shops.{s}", r) for s, r in self.shops.items())):
            for trigger, names in rules.triggers.items():
                missing = [n for n in names if n not in self.templates]
                if missing:
                    raise ValueError(f"{where}.triggers.{trigger}: no template named {', '.join(missing)}")
        for name, template in self.templates.items():
            absent = [p for p in self.providers if p not in template.codes]
            if absent:
                raise ValueError(f"templates.{name}: no template code for provider(s) {', '.join(absent)}")
        if self.gateways:
            missing = [p for p in self.providers if p not in self.gateways]
            if missing:
                raise ValueError(f"providers: no [gateways.{missing[0]}] section")
        return self

    def rules(self, shop_id: str) -> ShopRules:
        """The shop's rules: its own section, else the defaults (a shop section replaces the defaults' triggers
        only when it names some)."""
        own = self.shops.get(shop_id)
        if own is None:
            return self.defaults
        return own if own.triggers else own.model_copy(update={"triggers": self.defaults.triggers})

    def templates_for(self, shop_id: str, trigger: str) -> list[tuple[str, Template]]:
        """The templates `trigger` fires in the shop (a tracking step first, then the bare event type)."""
        rules = self.rules(shop_id)
        if not rules.enabled:
            return []
        names = rules.triggers.get(trigger)
        if names is None and ":" in trigger:
            names = rules.triggers.get(trigger.split(":", 1)[0])
        return [(name, self.templates[name]) for name in names or []]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg'].removeprefix('Value error, ')}" if where else err["msg"].removeprefix(
        "Value error, ")


def parse_sms_config(data: Mapping) -> SmsConfig:
    """The configuration from parsed TOML, or SmsConfigError naming the first problem."""
    try:
        return SmsConfig.model_validate(data)
    except ValidationError as exc:
        raise SmsConfigError(_first_error(exc)) from None


def load_sms_config(path: str | Path, environ: Mapping[str, str] | None = None) -> SmsConfig:
    """Read and check `path`; any problem is one SmsConfigError line naming the file.

    The environment (`environ`, default os.environ) applies `TONGLU_SMS_MARKETING_HOURS` to every shop that
    does not set its own window and `{sms_sim}` in addresses (`TONGLU_SMS_SIM_HTTP`, the local simulators).
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SmsConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SmsConfigError(f"{path}: not TOML: {exc}") from None
    try:
        return parse_sms_config(apply_environment(data, environ))
    except (SmsConfigError, ValueError) as exc:
        raise SmsConfigError(f"{path}: {exc}") from None
