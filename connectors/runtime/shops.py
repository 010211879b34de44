"""Where shops' credentials come from: the shops file (production) and the local simulators' `/_sim/shops`."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from connectors.runtime.base import ShopCredentials


async def discover_shops(session: aiohttp.ClientSession, shops_file: Path | None,
                         simulators: dict[str, str]) -> list[ShopCredentials]:
    """Every shop of the shops file and of the simulators that answer (one that is not up yet is skipped)."""
    found = []
    if shops_file and shops_file.exists():
        found += [ShopCredentials(**row) for row in json.loads(shops_file.read_text())]
    for platform, base in simulators.items():
        try:
            async with session.get(f"{base}/_sim/shops", timeout=aiohttp.ClientTimeout(total=3)) as r:
                shops = (await r.json())["shops"]
        except (TimeoutError, aiohttp.ClientError, KeyError, ValueError):
            continue  # simulator not up yet
        for shop in shops:
            found.append(ShopCredentials(platform=platform, shop_id=shop["shop_id"], base_url=base,
                                         app_key=shop.get("app_key", ""), app_secret=shop.get("app_secret", ""),
                                         access_token=shop.get("access_token", ""),
                                         extra={k: v for k, v in shop.items() if k not in (
                                             "shop_id", "app_key", "app_secret", "access_token")}))
    return found


class ShopDirectory:
    """Credentials by (platform, shop id), looked up again (at most every `refresh_s`) when one is missing."""

    def __init__(self, session: aiohttp.ClientSession, shops_file: Path | None, simulators: dict[str, str],
                 refresh_s: float = 2.0):
        self.session, self.shops_file, self.simulators, self.refresh_s = session, shops_file, simulators, refresh_s
        self._known: dict[tuple[str, str], ShopCredentials] = {}
        self._looked = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, platforms: tuple[str, ...], shop_id: str) -> ShopCredentials | None:
        """The credentials of `shop_id` under the first of `platforms` (a code and its folder's code) that has
        them, or None."""
        hit = self._find(platforms, shop_id)
        if hit is None:
            async with self._lock:
                hit = self._find(platforms, shop_id)
                if hit is None and time.monotonic() - self._looked >= self.refresh_s:
                    self._looked = time.monotonic()
                    for creds in await discover_shops(self.session, self.shops_file, self.simulators):
                        self._known[(creds.platform, creds.shop_id)] = creds
                    hit = self._find(platforms, shop_id)
        return hit

    def _find(self, platforms: tuple[str, ...], shop_id: str) -> ShopCredentials | None:
        for platform in platforms:  # a loop, not a generator: asked once per call, thousands a second
            hit = self._known.get((platform, shop_id))
            if hit is not None:
                return hit
        return None
