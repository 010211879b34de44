"""facts.toml: the Douyin API facts the shared manifest has no key for, validated at import."""
from __future__ import annotations

import tomllib
from functools import reduce
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paging(_Strict):
    depth_max: int = Field(gt=0)
    deep_code: int
    deep_sub_code: str


class Token(_Strict):
    access_ttl_s: int = Field(gt=0)
    refresh_ttl_s: int = Field(gt=0)
    refresh_grace_s: int = Field(ge=0)


class Errors(_Strict):
    rate_limited_sub_code: str


class Push(_Strict):
    sign_methods: list[str] = Field(min_length=1)


class Ciphertext(_Strict):
    name: str = Field(min_length=1, max_length=1)
    address: str = Field(min_length=1, max_length=1)
    phone: str = Field(min_length=1, max_length=1)


class Facts(_Strict):
    paging: Paging
    token: Token
    errors: Errors
    push: Push
    ciphertext: Ciphertext
    ship_refusals: dict[str, str]
    unverified: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_keys(self) -> Facts:
        fields = self.model_dump()
        for key in self.unverified:
            try:
                reduce(lambda node, part: node[part], key.split("."), fields)
            except (KeyError, TypeError):
                raise ValueError(f"unverified names {key!r}, which is not a key") from None
        return self


def load_facts(path: Path = Path(__file__).with_name("facts.toml")) -> Facts:
    """The validated facts; ValueError with one line naming the file and the key otherwise."""
    try:
        return Facts.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ValueError(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}") from None


FACTS = load_facts()
