"""Where messages go, as data in `infra/sms.toml`: the commercial gateways and the platforms' official channels.

Secrets are never in the file: a `*_env` key names the environment variable that holds one. Addresses may say
`{sms_sim}`, replaced by `TONGLU_SMS_SIM_HTTP` (default `http://127.0.0.1:8086`, the local simulators), so the
shipped file works locally and a production copy names the real endpoints.
"""
from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIM_ENV, HOURS_ENV = "TONGLU_SMS_SIM_HTTP", "TONGLU_SMS_MARKETING_HOURS"
DEFAULT_SIM = "http://127.0.0.1:8086"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class GatewaySpec(BaseModel):
    """A commercial SMS gateway for plain phone numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["aliyun", "tencent"]
    url: str
    access_key_id: str  # Aliyun AccessKeyId, Tencent SecretId
    secret_env: str  # the variable holding the AccessKeySecret / SecretKey
    app_id: str | None = None  # Tencent SmsSdkAppId
    region: str | None = None
    timeout_s: float = 2.0  # no answer by then: the message is in doubt, checked with the gateways, not failed over
    max_batch: int = 1  # numbers per request for messages of one template and the same parameters
    concurrency: int = 64  # requests in flight
    down_after: int = 3  # failures in a row that mark the gateway down ...
    down_for_s: float = 5.0  # ... for this long before one request probes it again


class ChannelSpec(BaseModel):
    """A platform's official channel for its encrypted buyers (the token goes as it came, never decrypted).

    A platform folder with an `sms_channel.py` speaks its platform's API itself; for the others the generic
    channel posts JSON naming `method`, with our fields renamed by `fields` (the request shape is data).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    app_key: str = ""
    secret_env: str | None = None
    session_env: str | None = None  # the shop's authorised session, where the platform wants one
    method: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)  # order_id, token, sign, template_code, params -> name
    timeout_s: float = 2.0
    concurrency: int = 64
    batch_url: str | None = None  # where lists of messages go, when the folder's channel speaks such an API
    max_batch: int = 1  # messages per request there
    # Delivery reports pushed by the platform to /sms/<platform>/report/<token> as JSON arrays. No platform sheet
    # says how these come back (unverified): the shape is data, our names (out_id, message_id, token, status,
    # code, report_time) renamed by `report_fields`; `reports = false` for a platform that sends none.
    reports: bool = True
    report_fields: dict[str, str] = Field(default_factory=dict)


def _fill(value, sim: str):
    if isinstance(value, str):
        return value.replace("{sms_sim}", sim)
    if isinstance(value, dict):
        return {k: _fill(v, sim) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, sim) for v in value]
    return value


def apply_environment(data: Mapping, environ: Mapping[str, str] | None = None) -> dict:
    """The parsed file with the environment applied: `{sms_sim}` addresses, and `TONGLU_SMS_MARKETING_HOURS`
    for the defaults and every shop without a window of its own. ValueError names a malformed variable."""
    environ = os.environ if environ is None else environ
    out = copy.deepcopy(dict(data))
    sim = (environ.get(SIM_ENV) or DEFAULT_SIM).rstrip("/")
    for section in ("gateways", "channels"):
        if isinstance(out.get(section), dict):
            out[section] = _fill(out[section], sim)
    hours = (environ.get(HOURS_ENV) or "").strip()
    if hours:
        if not _WINDOW.match(hours.replace(" ", "")):
            raise ValueError(f"{HOURS_ENV}={hours!r} is not HH:MM-HH:MM, e.g. 09:00-21:00")
        hours = hours.replace(" ", "")
        out.setdefault("defaults", {})["marketing_hours"] = hours
        for rules in (out.get("shops") or {}).values():
            if isinstance(rules, dict):
                rules.setdefault("marketing_hours", hours)  # a shop's own window stays its own
    return out
