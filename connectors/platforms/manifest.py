"""A platform's manifest (`<folder>/manifest.toml`): what is data about a platform, validated at load.

The model is strict (unknown keys are refused) so a typo does not silently fall back to a default;
`load_manifest` turns any problem into `ManifestError` with a one-line reason naming the file and key.
"""
from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.canonical import ORDER_STATUSES, REFUND_STATUSES

CanonicalStatus = Literal[ORDER_STATUSES]
CanonicalRefund = Literal[REFUND_STATUSES]
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"


class ManifestError(ValueError):
    """A platform manifest that cannot be used; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Limits(_Strict):
    window_max_s: int = Field(gt=0, description="widest incremental window the API accepts")
    window_advised_s: int | None = Field(None, gt=0, description="what the platform advises (≤ window_max_s)")
    lookback_days: int | None = Field(None, gt=0, description="how far back the incremental API reaches")
    page_size_max: int = Field(gt=0)


class Rate(_Strict):
    requests_per_second: float = Field(gt=0)
    burst: float = Field(gt=0)


class Push(_Strict):
    channel: Literal["webhook", "tmc", "websocket", "message_queue"]
    kinds: list[str] = Field(min_length=1)
    signature: str = Field(min_length=1, description="the scheme's name, e.g. hmac-sha256-base64")


class Capabilities(_Strict):
    pull: bool
    push: bool  # Tonglu receives this platform's pushes at /webhooks/<code>
    ship_back: bool
    encrypted_receivers: bool


class Status(_Strict):
    status: CanonicalStatus
    refund: CanonicalRefund = "NONE"


class Manifest(_Strict):
    names: Names
    gateway: str = Field(min_length=1, description="how the API is addressed, e.g. 'router /router/rest'")
    signing: str = Field(min_length=1, description="the request-signing scheme's name")
    timezone: str
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="None: each order names its own")
    money_unit: Literal["major", "minor"]  # major: yuan/dollars as decimals; minor: fen/cents integers
    limits: Limits
    rate: Rate
    capabilities: Capabilities
    push: Push | None = None
    statuses: dict[str, Status] = Field(min_length=1)
    refund_statuses: dict[str, CanonicalRefund] = Field(default_factory=dict)
    carriers: dict[str, str] = Field(default_factory=dict, description="platform carrier code -> name")
    aliases: dict[str, Names] = Field(default_factory=dict)
    xml_lists: list[str] = Field(default_factory=list, description="XML elements that are always lists")
    sim_port: int | None = Field(None, ge=1, le=65535, description="local simulator port (TONGLU_SIMULATORS wins)")
    demo_shops: list[str] = Field(default_factory=list)
    raw_body_personal: bool = Field(True, description="raw bodies may hold buyers' personal data: raw.orders "
                                                      "seals them (false only when the API by design returns none)")
    qimen_source_code: str = Field("OTHER", pattern=r"^[A-Z][A-Z0-9_]*$",
                                   description="sourcePlatformCode of Qimen (奇门) delivery orders: TB, JD, ...")
    unverified: list[str] = Field(default_factory=list, description="dotted keys of facts not confirmed")
    hand_made_samples: list[str] = Field(
        default_factory=list, description="files in samples/ written by hand to cover edge cases rather than "
                                          "recorded from the API: tested like the others, but the mapping "
                                          "bench's figure is taken on recorded pages")
    amount_identity_exception: str | None = Field(
        None, pattern=r"^[^\n]*\S[^\n]*$",
        description="why items_total + shipping_fee - discount_total + tax_total may differ from paid_total "
                    "on this platform (None: the identity holds on every order)")

    @field_validator("statuses", mode="before")
    @classmethod
    def _short_statuses(cls, value):
        """`WAIT_BUYER_PAY = "PENDING_PAYMENT"` is short for `{ status = "PENDING_PAYMENT" }`."""
        if isinstance(value, dict):
            return {k: {"status": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("aliases")
    @classmethod
    def _alias_codes(cls, value: dict) -> dict:
        import re

        for alias in value:
            if not re.match(CODE_PATTERN, alias):
                raise ValueError(f"alias {alias!r} is not a lower-case code")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.capabilities.push and self.push is None:
            raise ValueError("capabilities.push is true but there is no [push] table")
        if self.limits.window_advised_s and self.limits.window_advised_s > self.limits.window_max_s:
            raise ValueError("limits.window_advised_s exceeds limits.window_max_s")
        fields = self.model_dump()
        for key in self.unverified:
            node = fields
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise ValueError(f"unverified names {key!r}, which is not a manifest key")
                node = node[part]
        return self


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}"


def load_manifest(path: Path) -> Manifest:
    """The validated manifest at `path`; ManifestError (one line: file, key, reason) when unusable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{path}: {_one_line(exc)}") from None


@cache
def folder_manifest(module_file: str) -> Manifest:
    """The manifest of the platform folder holding `module_file` (a module's `__file__`)."""
    return load_manifest(Path(module_file).parent / "manifest.toml")
