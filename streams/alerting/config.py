"""Alert routing configuration (`infra/alert_routing.toml`): routes, throttling, quiet hours, channels."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.config_files import first_problem, read_toml

Severity = Literal["info", "warning", "critical"]
ChannelType = Literal["dingtalk", "feishu", "wecom", "email", "sms"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RoutingError(ValueError):
    """The routing file is missing, not TOML, or not a valid configuration (one-line message)."""


class RouteMatch(BaseModel):
    """Every listed field must match; an empty list matches anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    severity: list[Severity] = []
    platform: list[str] = []
    shop: list[str] = []
    rule: list[str] = []

    def matches(self, anomaly: Mapping) -> bool:
        """True when the anomaly falls under this match."""
        pairs = ((self.severity, "severity"), (self.platform, "platform"), (self.shop, "shop_id"),
                 (self.rule, "rule"))
        return all(not wanted or str(anomaly.get(field)) in wanted for wanted, field in pairs)


class Route(BaseModel):
    """Where matching anomalies go: `channels[0]` is the primary, the rest are failovers in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    match: RouteMatch = RouteMatch()
    channels: list[str] = Field(min_length=1)
    throttle_seconds: int | None = Field(None, gt=0)
    max_messages: int | None = Field(None, gt=0)
    quiet_hours: bool = True


class QuietHours(BaseModel):
    """Non-critical alerts are held from `start` to `end` (local time) and sent as one digest at `end`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    start: str = "22:00"
    end: str = "08:00"
    timezone: str = "Asia/Shanghai"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not HH:MM")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def _minutes(self, hhmm: str) -> int:
        hours, minutes = hhmm.split(":")
        return int(hours) * 60 + int(minutes)

    def _local(self, now_ms: int) -> datetime:
        return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.timezone))

    def contains(self, now_ms: int) -> bool:
        """True inside the quiet window (which may wrap midnight)."""
        if not self.enabled or self.start == self.end:
            return False
        local = self._local(now_ms)
        minute = local.hour * 60 + local.minute
        start, end = self._minutes(self.start), self._minutes(self.end)
        return start <= minute < end if start < end else minute >= start or minute < end

    def next_end(self, now_ms: int) -> int:
        """Epoch ms of the next end of quiet hours after `now_ms`."""
        local = self._local(now_ms)
        end = self._minutes(self.end)
        candidate = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
        if candidate <= local:
            candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=local.tzinfo)
        return int(candidate.timestamp() * 1000)

    @property
    def label(self) -> str:
        """'22:00–08:00' for message texts."""
        return f"{self.start}–{self.end}"


class ChannelSpec(BaseModel):
    """A channel definition: `type` plus the constructor options of its client.

    Keys ending in `_env` name an environment variable holding the value (secrets stay out of the file):
    `secret_env = "TONGLU_DINGTALK_SECRET"` → option `secret`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    type: ChannelType

    def options(self, env: Mapping[str, str] | None = None) -> dict:
        """Constructor options with `*_env` indirections resolved (missing variables raise RoutingError)."""
        env = os.environ if env is None else env
        resolved = {}
        for key, value in (self.model_extra or {}).items():
            if key.endswith("_env"):
                if value not in env:
                    raise RoutingError(f"environment variable {value} (for {key[:-4]}) is not set")
                resolved[key[:-4]] = env[value]
            else:
                resolved[key] = value
        return resolved


class RoutingConfig(BaseModel):
    """The whole alert routing policy; the first route whose `match` fits an anomaly takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    api_base: str = "http://127.0.0.1:8080"
    throttle_seconds: int = Field(60, gt=0)
    max_messages_per_window: int = Field(10, gt=0)
    max_immediate_per_window: int = Field(3, ge=0)
    dedup_ttl_hours: int = Field(168, gt=0)
    dedup_max_ids: int = Field(1_000_000, gt=0)
    summarize_resolved: bool = True
    quiet_hours: QuietHours = QuietHours()
    channels: dict[str, ChannelSpec] = {}
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_channels(self) -> RoutingConfig:
        names = [route.name for route in self.routes]
        if len(set(names)) != len(names):
            raise ValueError(f"route names must be unique: {names}")
        if self.channels:
            for route in self.routes:
                unknown = [c for c in route.channels if c not in self.channels]
                if unknown:
                    raise ValueError(f"route {route.name!r} uses undefined channels {unknown}")
        return self

    def route_for(self, anomaly: Mapping) -> Route | None:
        """The first matching route, None when no route matches."""
        return next((route for route in self.routes if route.match.matches(anomaly)), None)

    def window_ms(self, route: Route) -> int:
        """Throttle window of a route in ms."""
        return (route.throttle_seconds or self.throttle_seconds) * 1000

    def budget(self, route: Route) -> int:
        """Messages a route may send per window."""
        return route.max_messages or self.max_messages_per_window


def load_routing(path: str | Path) -> RoutingConfig:
    """Read and validate a routing TOML file; every problem is one RoutingError line naming file and field."""
    path = Path(path)
    data = read_toml(path, RoutingError)
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        raise RoutingError(f"{path}: {first_problem(exc)}") from None
