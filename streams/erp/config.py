"""ERP routing (`infra/erp.toml`, or the file `TONGLU_ERP_ROUTING` names): the endpoints every order event
is delivered to, validated at start with a one-line reason.

`[defaults]` holds what endpoints share (timeout, connections, pipelining, retries); each `[[endpoints]]`
may override any of it. `url` may use `${VARIABLE}` (the environment, and `TONGLU_ERP_SIM_HTTP` with its
default), so the shipped file follows the local simulator wherever it runs. Secrets are never in the
file: `secret_env` names the environment variable holding the endpoint's secret.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.erp.qimen import QimenParty
from streams.config_files import first_problem, read_toml

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ErpConfigError(ValueError):
    """The ERP routing file is missing, not TOML, or not a valid configuration (one-line message)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retry(_Strict):
    """Attempts per event before it is dead-lettered, and the backoff between them (doubling, capped)."""

    max_attempts: int = Field(20, ge=1)
    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(300.0, gt=0)


class Transport(_Strict):
    timeout_s: float = Field(10.0, gt=0, description="an answer must come within this (else retried)")
    connections: int = Field(4, ge=1, le=64, description="keep-alive connections; partition p uses p mod n")
    pipeline: int = Field(16, ge=1, le=256, description="requests in flight per connection (1: no pipelining)")


class Defaults(Transport):
    retry: Retry = Retry()


class QimenSpec(_Strict):
    app_key: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    warehouse_code: str = Field(min_length=1)
    owner_code: str = Field(min_length=1)
    order_type: str = "JYCK"
    logistics_code: str = "OTHER"


class EndpointSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="names its consumer group and DLQ records")
    url: str = Field(min_length=1, description="http(s)://..., after ${VARIABLE}s are filled in")
    format: Literal["json", "qimen"] = "json"
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    events: list[str] = Field(default_factory=list, description="event types to deliver; empty: all")
    enabled: bool = True
    start: Literal["earliest", "latest"] = Field("earliest", description="where a new endpoint starts reading")
    timeout_s: float | None = Field(None, gt=0)
    connections: int | None = Field(None, ge=1, le=64)
    pipeline: int | None = Field(None, ge=1, le=256)
    retry: Retry | None = None
    qimen: QimenSpec | None = None

    @model_validator(mode="after")
    def _qimen_party(self) -> EndpointSpec:
        if self.format == "qimen" and self.qimen is None:
            raise ValueError(f"endpoint {self.name!r}: format qimen needs a [endpoints.qimen] table")
        return self


class RoutingFile(_Strict):
    defaults: Defaults = Defaults()
    endpoints: list[EndpointSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RoutingFile:
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique: {names}")
        return self


@dataclass(frozen=True)
class Endpoint:
    """One resolved endpoint: its spec with the defaults filled in (see the module)."""

    name: str
    url: str
    format: str
    secret_env: str
    events: frozenset[str]
    start: str
    timeout_s: float
    connections: int
    pipeline: int
    retry: Retry
    qimen: QimenParty | None

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint takes events of this type."""
        return not self.events or event_type in self.events

    def secret(self, env: Mapping[str, str] | None = None) -> str:
        """The secret from the environment variable the file names; ErpConfigError when it is unset."""
        env = os.environ if env is None else env
        value = env.get(self.secret_env)
        if not value:
            raise ErpConfigError(f"endpoint {self.name!r}: environment variable {self.secret_env} (its secret) "
                                 "is not set")
        return value


def _expand(url: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise ErpConfigError(f"url {url!r}: variable {name} is not set")
        return variables[name].rstrip("/")

    return _VARIABLE.sub(one, url)


def _resolve(spec: EndpointSpec, defaults: Defaults, variables: Mapping[str, str]) -> Endpoint:
    qimen = QimenParty(**spec.qimen.model_dump()) if spec.qimen else None
    url = _expand(spec.url, variables)
    if not re.match(r"^https?://[^/?#]+", url):
        raise ErpConfigError(f"endpoint {spec.name!r}: url {url!r} is not an http(s) URL")
    return Endpoint(name=spec.name, url=url, format=spec.format, secret_env=spec.secret_env,
                    events=frozenset(spec.events), start=spec.start,
                    timeout_s=spec.timeout_s or defaults.timeout_s, connections=spec.connections or defaults.connections,
                    pipeline=spec.pipeline or defaults.pipeline, retry=spec.retry or defaults.retry, qimen=qimen)


def load_erp_routing(path: str | Path, variables: Mapping[str, str] | None = None) -> list[Endpoint]:
    """The enabled endpoints of a routing file; every problem is one ErpConfigError line naming file and field.

    `variables` fill `${NAME}` in URLs (default: the environment).
    """
    path = Path(path)
    data = read_toml(path, ErpConfigError)
    try:
        routing = RoutingFile.model_validate(data)
    except ValidationError as exc:
        raise ErpConfigError(f"{path}: {first_problem(exc)}") from None
    variables = os.environ if variables is None else variables
    try:
        return [_resolve(spec, routing.defaults, variables) for spec in routing.endpoints if spec.enabled]
    except ErpConfigError as exc:
        raise ErpConfigError(f"{path}: {exc}") from None
