"""Platform folders: each holds a client, a pure mapping, a simulator and recorded samples.

Adding a platform means adding its folder and one line here; nothing downstream changes.
"""
from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

# platform code -> package that implements it (Tmall runs on the same TOP gateway as Taobao)
PACKAGES = {
    "taobao": "connectors.platforms.taobao",
    "tmall": "connectors.platforms.taobao",
    "shopify": "connectors.platforms.shopify",
}


class UnknownPlatform(ValueError):
    pass


def names() -> list[str]:
    return sorted(PACKAGES)


@cache
def module(platform: str, part: str) -> ModuleType:
    """The `part` module (mapping, client, simulator, render) of a platform."""
    try:
        package = PACKAGES[platform]
    except KeyError:
        raise UnknownPlatform(f"unknown platform {platform!r}; known: {', '.join(names())}") from None
    return importlib.import_module(f"{package}.{part}")


def raw_body_personal(platform: str) -> bool:
    """Whether the platform's raw bodies may hold buyers' personal data, so raw.orders seals them.

    A platform package opts out with `RAW_BODY_PERSONAL = False` only when its API by design returns
    none; unknown platforms and packages that say nothing are sealed.
    """
    package = PACKAGES.get(platform)
    return package is None or getattr(importlib.import_module(package), "RAW_BODY_PERSONAL", True)


def map_payload(platform: str, body: bytes, content_type: str, shop_id: str) -> list[dict]:
    """Canonical orders (version 0) in one raw platform payload; raises MappingError on bad input."""
    return module(platform, "mapping").map_payload(body, content_type, shop_id, platform=platform)


# default request budget per shop (requests/s, burst): the platforms' documented limits
RATE_LIMITS = {"taobao": (10.0, 10.0), "tmall": (10.0, 10.0), "shopify": (2.0, 40.0)}

CLIENT_CLASSES = {"taobao": "TaobaoClient", "tmall": "TaobaoClient", "shopify": "ShopifyClient"}


def client(creds, caller):
    """The API client of `creds.platform` for one shop."""
    return getattr(module(creds.platform, "client"), CLIENT_CLASSES[creds.platform])(creds, caller)
