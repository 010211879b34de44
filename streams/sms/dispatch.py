"""Calling the providers for one message: the gateways in failover order with their health, or the platform's
official channel; each try noted as an `SmsAttempt`."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from connectors.sms.channels import PlatformChannel
from connectors.sms.gateways import AliyunGateway, Outgoing, Result, TencentGateway, batch_out_id
from connectors.sms.transport import Endpoints
from streams.sms.failover import Health, try_order
from streams.sms.templates import SmsConfig

# One text to many numbers is a campaign, read over several polls (one per partition's fetch): a gateway's list
# waits this long for them, a platform channel's lists (each message its own text, on the order path) 5 ms.
GATEWAY_WINDOW_S = 0.05


def outgoing(request: Mapping, to: str, provider: str) -> Outgoing:
    """What `provider` is asked to send for `request` (its template code there)."""
    return Outgoing(request["key"], to, request["sign"], request["codes"].get(provider, ""),
                    tuple((p["name"], p["value"]) for p in request["params"]), request["order_id"],
                    request["platform"], request["shop_id"])


def attempt(provider: str, result: Result, started_ms: int) -> dict:
    """One `SmsAttempt`."""
    return {"provider": provider, "ok": result.ok, "code": result.code, "error": result.error,
            "started_at": started_ms, "latency_ms": round(result.latency_ms, 3)}


class Batcher:
    """One provider's requests, gathered for `window_s` and sent together, up to `max_batch` messages.

    Gateways (`shared_out_id`): messages with the same sign, template and parameters go in one request (Aliyun
    `PhoneNumbers`, Tencent `PhoneNumberSet`) under the batch's own out id. A platform channel that takes lists
    (Taobao through an integrator's gateway) sends any messages together, each item with its own key. A batch
    refused as a whole for something one message may cause (a bad number, flow control) is sent again message by
    message, so one never sinks the others."""

    def __init__(self, send_one, send_many, max_batch: int, limit: asyncio.Semaphore, shared_out_id: bool,
                 window_s: float = 0.005):
        self.send_one, self.send_many, self.limit = send_one, send_many, limit
        self.max_batch, self.shared_out_id, self.window_s = max(1, max_batch), shared_out_id, window_s
        self._groups: dict[object, list[tuple[Outgoing, asyncio.Future]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.requests = 0

    def _group(self, message: Outgoing) -> object:
        return (message.sign, message.template_code, message.params) if self.shared_out_id else None

    async def send(self, message: Outgoing) -> tuple[Result, str]:
        """(the result for this message, the out id the provider received)."""
        if self.max_batch == 1:
            return await self._one(message)
        group = self._group(message)
        waiting = self._groups.get(group)
        if waiting is None:
            waiting = self._groups[group] = []
            self._start(self._after_window(group))
        done = asyncio.get_running_loop().create_future()
        waiting.append((message, done))
        if len(waiting) >= self.max_batch:
            self._start(self._flush(self._groups.pop(group)))
        return await done

    def _start(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, message: Outgoing) -> tuple[Result, str]:
        async with self.limit:
            self.requests += 1
            return await self.send_one(message), message.key

    async def _after_window(self, group: object) -> None:
        await asyncio.sleep(self.window_s)
        waiting = self._groups.pop(group, None)
        if waiting:
            await self._flush(waiting)

    async def _flush(self, waiting: list[tuple[Outgoing, asyncio.Future]]) -> None:
        try:
            if len(waiting) == 1:
                outcomes = [await self._one(waiting[0][0])]
            else:
                outcomes = await self._batch([m for m, _ in waiting])
        except Exception as exc:  # noqa: BLE001 - every waiting message learns of it
            for _, done in waiting:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), outcome in zip(waiting, outcomes, strict=True):
            if not done.done():
                done.set_result(outcome)

    async def _batch(self, messages: list[Outgoing]) -> list[tuple[Result, str]]:
        out_id = batch_out_id([m.key for m in messages]) if self.shared_out_id else None
        async with self.limit:
            self.requests += 1
            results = await self.send_many(messages, out_id)
        first = results[0]
        if not first.ok and not first.unhealthy and not first.in_doubt and all(r == first for r in results):
            return list(await asyncio.gather(*(self._one(m) for m in messages)))
        return [(r, out_id or m.key) for r, m in zip(results, messages, strict=True)]


class Dispatcher:
    def __init__(self, config: SmsConfig, http: Endpoints, gateway_secrets: Mapping[str, str],
                 channel_secrets: Mapping[str, dict]):
        self.config = config
        self.health = {name: Health(spec.down_after, int(spec.down_for_s * 1000))
                       for name, spec in config.gateways.items()}
        self.gateways = {}
        for name, spec in config.gateways.items():
            if spec.type == "aliyun":
                self.gateways[name] = AliyunGateway(name, spec.url, spec.access_key_id, gateway_secrets[name],
                                                    http, spec.timeout_s, spec.region or "cn-hangzhou")
            else:
                self.gateways[name] = TencentGateway(name, spec.url, spec.access_key_id, gateway_secrets[name],
                                                     spec.app_id or "", http, spec.timeout_s,
                                                     spec.region or "ap-guangzhou")
        self.channels = {name: PlatformChannel(name, spec, http, channel_secrets[name])
                         for name, spec in config.channels.items()}
        self.limits = {name: asyncio.Semaphore(spec.concurrency)
                       for name, spec in [*config.gateways.items(), *config.channels.items()]}
        self.batchers = {name: self._gateway_batcher(name, spec.max_batch) for name, spec in config.gateways.items()}
        self.channel_batchers = {
            name: Batcher(self.channels[name].send, lambda ms, _, c=self.channels[name]: c.send_many(ms),
                          spec.max_batch, self.limits[name], shared_out_id=False)
            for name, spec in config.channels.items()}

    def _gateway_batcher(self, name: str, max_batch: int) -> Batcher:
        gateway = self.gateways[name]

        async def one(message: Outgoing) -> Result:
            return (await gateway.send([message], message.key))[0]

        return Batcher(one, gateway.send, max_batch, self.limits[name], shared_out_id=True, window_s=GATEWAY_WINDOW_S)

    async def send(self, request: Mapping, to: str) -> tuple[Result, str | None, list[dict], str]:
        """(the last result, the provider that gave it, every attempt, the out id it received) for one message."""
        tried: list[dict] = []
        if request["channel"] == "platform":
            result, provider = await self._via_channel(request, to, tried)
            return result, provider, tried, request["key"]
        result, provider, out_id = await self._via_gateways(request, to, tried)
        return result, provider, tried, out_id

    async def _via_gateways(self, request: Mapping, to: str,
                            tried: list[dict]) -> tuple[Result, str | None, str]:
        result, last, out_id = Result(False, "no_gateway", "no gateway configured", elsewhere=True), None, ""
        for name in try_order(self.config.providers, self.health, int(time.time() * 1000)):
            started = int(time.time() * 1000)
            result, out_id = await self.batchers[name].send(outgoing(request, to, name))
            self.health[name].record(result.ok, result.unhealthy, int(time.time() * 1000))
            tried.append(attempt(name, result, started))
            last = name
            if result.ok or not result.elsewhere:
                break
        return result, last, out_id

    async def _via_channel(self, request: Mapping, to: str, tried: list[dict]) -> tuple[Result, str | None]:
        platform = request["platform"]
        channel = self.channels.get(platform)
        if channel is None:
            return Result(False, "no_channel", f"no official channel configured for platform {platform}"), None
        started = int(time.time() * 1000)
        result, _ = await self.channel_batchers[platform].send(outgoing(request, to, platform))
        tried.append(attempt(platform, result, started))
        return result, platform

    async def find(self, to: str, key: str, at_ms: int, text: str) -> tuple[str, Result] | None:
        """The gateway that took out id `key` (or a batch with `text`) for `to`, asking each in turn (raises when
        one cannot say)."""
        for name in self.config.providers:
            hit = await self.gateways[name].find(to, key, at_ms, text)
            if hit is not None:
                return name, hit
        return None

    def stats(self, now_ms: int) -> dict:
        return {n: {"up": h.up(now_ms), "sent": h.sent, "failed": h.failed, "requests": self.batchers[n].requests}
                for n, h in self.health.items()}
