"""Calling the providers for one message: the gateways in failover order with their health, or the platform's
official channel; each try noted as an `SmsAttempt`."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp

from connectors.sms.channels import PlatformChannel
from connectors.sms.gateways import AliyunGateway, Outgoing, Result, TencentGateway
from streams.sms.failover import Health, try_order
from streams.sms.templates import SmsConfig


def outgoing(request: Mapping, to: str, provider: str) -> Outgoing:
    """What `provider` is asked to send for `request` (its template code there)."""
    return Outgoing(request["key"], to, request["sign"], request["codes"].get(provider, ""),
                    tuple((p["name"], p["value"]) for p in request["params"]), request["order_id"],
                    request["platform"], request["shop_id"])


def attempt(provider: str, result: Result, started_ms: int) -> dict:
    """One `SmsAttempt`."""
    return {"provider": provider, "ok": result.ok, "code": result.code, "error": result.error,
            "started_at": started_ms, "latency_ms": round(result.latency_ms, 3)}


class Dispatcher:
    def __init__(self, config: SmsConfig, session: aiohttp.ClientSession, gateway_secrets: Mapping[str, str],
                 channel_secrets: Mapping[str, dict]):
        self.config = config
        self.health = {name: Health(spec.down_after, int(spec.down_for_s * 1000))
                       for name, spec in config.gateways.items()}
        self.gateways = {}
        for name, spec in config.gateways.items():
            if spec.type == "aliyun":
                self.gateways[name] = AliyunGateway(name, spec.url, spec.access_key_id, gateway_secrets[name],
                                                    session, spec.timeout_s, spec.region or "cn-hangzhou")
            else:
                self.gateways[name] = TencentGateway(name, spec.url, spec.access_key_id, gateway_secrets[name],
                                                     spec.app_id or "", session, spec.timeout_s,
                                                     spec.region or "ap-guangzhou")
        self.channels = {name: PlatformChannel(name, spec, session, channel_secrets[name])
                         for name, spec in config.channels.items()}
        self.limits = {name: asyncio.Semaphore(spec.concurrency)
                       for name, spec in [*config.gateways.items(), *config.channels.items()]}

    async def send(self, request: Mapping, to: str) -> tuple[Result, str | None, list[dict]]:
        """(the last result, the provider that gave it, every attempt) for one message."""
        tried: list[dict] = []
        if request["channel"] == "platform":
            result, provider = await self._via_channel(request, to, tried)
        else:
            result, provider = await self._via_gateways(request, to, tried)
        return result, provider, tried

    async def _call(self, name: str, call) -> Result:
        async with self.limits[name]:
            return await call

    async def _via_gateways(self, request: Mapping, to: str, tried: list[dict]) -> tuple[Result, str | None]:
        result, last = Result(False, "no_gateway", "no gateway configured", elsewhere=True), None
        for name in try_order(self.config.providers, self.health, int(time.time() * 1000)):
            started = int(time.time() * 1000)
            (result,) = await self._call(name, self.gateways[name].send([outgoing(request, to, name)]))
            self.health[name].record(result.ok, result.unhealthy, int(time.time() * 1000))
            tried.append(attempt(name, result, started))
            last = name
            if result.ok or not result.elsewhere:
                return result, name
        return result, last

    async def _via_channel(self, request: Mapping, to: str, tried: list[dict]) -> tuple[Result, str | None]:
        platform = request["platform"]
        channel = self.channels.get(platform)
        if channel is None:
            return Result(False, "no_channel", f"no official channel configured for platform {platform}"), None
        started = int(time.time() * 1000)
        result = await self._call(platform, channel.send(outgoing(request, to, platform)))
        tried.append(attempt(platform, result, started))
        return result, platform

    async def find(self, to: str, key: str, at_ms: int) -> tuple[str, Result] | None:
        """The gateway that took out id `key` for `to`, asking each in turn (raises when one cannot say)."""
        for name in self.config.providers:
            hit = await self.gateways[name].find(to, key, at_ms)
            if hit is not None:
                return name, hit
        return None

    def stats(self, now_ms: int) -> dict:
        return {n: {"up": h.up(now_ms), "sent": h.sent, "failed": h.failed} for n, h in self.health.items()}
