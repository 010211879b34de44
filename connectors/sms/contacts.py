"""The plain number of a message, resolved only in the sending step and never kept.

Two sources: a member's phone sealed at import (`SealedContact`, opened with the raw-body keys of
schemas/sealing.py; AAD = the member's identity), and a buyer of a platform that returns receivers in clear, whose
number is read from the order fetched on the platform's API by the folder's client (`contact.buyer_phones`). An
encrypted buyer has no number here at all: the platform's token goes to its official channel.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from connectors import platforms
from connectors.runtime.caller import HttpCaller
from connectors.runtime.ratelimit import TokenBucket
from connectors.runtime.shops import ShopDirectory
from schemas.sealing import ALG, Opener, Sealer, aad

MEMBER_PLATFORM = "member"


def resolvable(platform: str) -> bool:
    """Whether the sender can look a buyer's plain number up on this platform (its folder has `contact.py`)."""
    try:
        platforms.module(platform, "contact")
    except (ModuleNotFoundError, platforms.UnknownPlatform):
        return False
    return True


def member_identity(shop_id: str, member_id: str) -> bytes:
    """What a member's sealed phone is bound to: it opens only as that member's."""
    return aad(f"member:{member_id}", MEMBER_PLATFORM, shop_id)


def seal_contact(sealer: Sealer, phone: str, shop_id: str, member_id: str) -> dict:
    """A `SealedContact` of `phone` for the member."""
    ciphertext, seal = sealer.seal(phone.encode(), f"member:{member_id}", MEMBER_PLATFORM, shop_id)
    return {"alg": seal["alg"], "key_id": seal["key_id"], "wrapped_key": seal["wrapped_key"], "nonce": seal["nonce"],
            "ciphertext": ciphertext}


def open_contact(opener: Opener, contact: dict, shop_id: str, member_id: str) -> str:
    """The member's phone (raises SealError when it does not open)."""
    record = {"seal": {"alg": contact.get("alg", ALG), "key_id": contact["key_id"],
                       "wrapped_key": contact["wrapped_key"], "nonce": contact["nonce"]},
              "body": contact["ciphertext"], "record_id": f"member:{member_id}", "platform": MEMBER_PLATFORM,
              "shop_id": shop_id}
    return opener.open(record).decode()


class OrderContacts:
    """Reads buyers' numbers from the platform's orders at send time, through the folder's client (rate-limited
    per shop, every call recorded like the connectors' own). Lookups of one shop that arrive together go in one
    call (`contact.buyer_phones`): a platform's API budget is shared with the connector's polling."""

    def __init__(self, session: aiohttp.ClientSession, shops_file: Path | None, simulators: dict[str, str],
                 on_call: Callable[[dict], None] | None = None, gather_s: float = 0.02):
        self.session, self.on_call, self.gather_s = session, on_call, gather_s
        self.directory = ShopDirectory(session, shops_file, simulators)
        self._clients: dict[tuple[str, str], object] = {}
        self._pending: dict[tuple[str, str], dict[str, list[asyncio.Future]]] = {}
        self._lookups: set[asyncio.Task] = set()

    async def phone(self, order_id: str) -> str | None:
        """The number, None when the order has none; raises LookupError for a shop without credentials and the
        connector errors (TransientError, PermanentError) when the platform does not answer."""
        platform, shop_id, external_id = order_id.split(":", 2)
        shop = (platform, shop_id)
        waiting = self._pending.get(shop)
        if waiting is None:
            waiting = self._pending[shop] = {}
            task = asyncio.create_task(self._lookup(shop))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
        done = asyncio.get_running_loop().create_future()
        waiting.setdefault(external_id, []).append(done)
        return await done

    async def _client(self, platform: str, shop_id: str):
        client = self._clients.get((platform, shop_id))
        if client is None:
            creds = await self.directory.get((platform, platforms.get(platform).code), shop_id)
            if creds is None:
                raise LookupError(f"no credentials for shop {platform}:{shop_id}")
            rate, burst = platforms.rate_limit(platform)
            caller = HttpCaller(self.session, platform, shop_id, limiter=TokenBucket(rate, burst),
                                on_call=self.on_call, max_attempts=3, timeout=5.0)
            client = self._clients[(platform, shop_id)] = platforms.client(creds, caller)
        return client

    async def _lookup(self, shop: tuple[str, str]) -> None:
        await asyncio.sleep(self.gather_s)  # the lookups arriving meanwhile go in the same call
        waiting = self._pending.pop(shop, {})
        ids = list(waiting)
        module = platforms.module(shop[0], "contact")
        try:
            client = await self._client(*shop)
            found: dict[str, str | None] = {}
            for start in range(0, len(ids), module.MAX_IDS):
                found.update(await module.buyer_phones(client, ids[start:start + module.MAX_IDS]))
        except Exception as exc:  # noqa: BLE001 - every waiter learns why (LookupError, connector errors)
            for futures in waiting.values():
                for done in futures:
                    if not done.done():
                        done.set_exception(exc)
            return
        for external_id, futures in waiting.items():
            for done in futures:
                if not done.done():
                    done.set_result(found.get(external_id))
