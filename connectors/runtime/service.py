"""The connectors process: discovers shops, polls each one, receives pushes, records every API call."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from connectors import platforms
from connectors.runtime.archive import ArchiveWriter
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.checkpoints import CheckpointStore
from connectors.runtime.poller import PollPolicy, ShopPoller
from connectors.runtime.ratelimit import TokenBucket
from connectors.runtime.raw_publisher import REPORT_DELIVERIES, RawPublisher
from connectors.runtime.records import connector_call
from connectors.runtime.shops import discover_shops
from connectors.runtime.webhooks import WebhookReceiver, push_path
from connectors.tracking.receiver import TrackingReceiver
from schemas.kafka import Publisher

log = logging.getLogger(__name__)


@dataclass
class ConnectorSettings:
    kafka_config: dict
    raw_topic: str
    calls_topic: str
    data_dir: Path
    shops_file: Path | None = None  # production: JSON list of ShopCredentials fields
    simulators: dict[str, str] = field(default_factory=dict)  # platform -> simulator base URL (local stack)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8090
    policy: PollPolicy = field(default_factory=PollPolicy)
    rate_limits: dict = field(default_factory=dict)  # platform -> (requests/s, burst), overrides the defaults
    archive_retention_days: float = 30.0  # of the raw record archive under data_dir/archive (0: forever)
    logistics_topic: str | None = None  # with tracking_secret: courier pushes at /webhooks/kuaidi100
    tracking_secret: str | None = None  # derives each tracking subscription's salt (connectors.tracking)


class ConnectorService:
    def __init__(self, settings: ConnectorSettings):
        self.s = settings
        self.publisher = Publisher(settings.kafka_config, **REPORT_DELIVERIES)
        self.archive = ArchiveWriter(settings.data_dir / "archive", settings.archive_retention_days)
        self.raw = RawPublisher(self.publisher, settings.raw_topic, self.archive)
        self.checkpoints = CheckpointStore(settings.data_dir / "checkpoints.json")
        self.pollers: dict[str, ShopPoller] = {}
        self.secrets: dict[tuple[str, str], str] = {}
        self.receiver = WebhookReceiver(self.raw, self.secrets, on_named=self._read_named)
        self.tracking = (TrackingReceiver(self.raw, settings.logistics_topic, settings.tracking_secret)
                         if settings.logistics_topic and settings.tracking_secret else None)
        self._calls: list[tuple[str, bytes, bytes]] = []
        self._tasks: list[asyncio.Task] = []

    def record_call(self, record: dict) -> None:
        key = f"{record['platform']}:{record['shop_id']}".encode()
        self._calls.append((self.s.calls_topic, key, connector_call(record)))

    async def run(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self._webhook_app())
        await runner.setup()
        await web.TCPSite(runner, self.s.webhook_host, self.s.webhook_port).start()
        log.info("webhook receiver on http://%s:%d%s", self.s.webhook_host, self.s.webhook_port,
                 push_path("<platform>"))
        async with aiohttp.ClientSession() as session:
            self.session = session
            flusher = asyncio.create_task(self._flush_calls(stop))
            while not stop.is_set():
                await self._discover(stop)
                try:
                    await asyncio.wait_for(stop.wait(), 2.0)
                except TimeoutError:
                    pass
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await flusher
        await runner.cleanup()
        self.publisher.close()
        self.archive.close()

    def _webhook_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        if self.tracking is not None:  # before /webhooks/{platform}, which would take it for a platform
            app.add_routes(self.tracking.routes())
        app.add_routes(self.receiver.routes())
        return app

    def _read_named(self, platform: str, shop_id: str, external_ids: tuple[str, ...]) -> None:
        """A push named orders without carrying them: the shop's poller reads them now."""
        poller = self.pollers.get(f"{platform}:{shop_id}")
        if poller is not None:
            poller.fetch_soon(external_ids)

    async def _discover(self, stop: asyncio.Event) -> None:
        for creds in await self._shops():
            key = f"{creds.platform}:{creds.shop_id}"
            if key in self.pollers:
                continue
            try:
                rate, burst = self.s.rate_limits.get(creds.platform) or platforms.rate_limit(creds.platform)
            except platforms.UnknownPlatform as exc:
                log.error("shop %s skipped: %s", key, exc)
                continue
            caller = HttpCaller(self.session, creds.platform, creds.shop_id, limiter=TokenBucket(rate, burst),
                                on_call=self.record_call)
            poller = ShopPoller(platforms.client(creds, caller), creds.shop_id, self.raw, self.checkpoints,
                                self.s.policy)
            self.pollers[key] = poller
            self.secrets[(creds.platform, creds.shop_id)] = creds.app_secret
            self._tasks.append(asyncio.create_task(poller.run(stop)))
            await self._subscribe_webhooks(creds)
            log.info("polling %s (%s) every %.1fs", key, platforms.label(creds.platform), self.s.policy.interval)

    async def _shops(self) -> list[ShopCredentials]:
        return await discover_shops(self.session, self.s.shops_file, self.s.simulators)

    async def _subscribe_webhooks(self, creds: ShopCredentials) -> None:
        """A simulated shop of a pushing platform is told where to push (`POST /_sim/webhooks`)."""
        if creds.platform not in self.s.simulators or not platforms.manifest(creds.platform).capabilities.push:
            return
        address = f"http://{self.s.webhook_host}:{self.s.webhook_port}{push_path(creds.platform)}"
        try:
            async with self.session.post(f"{creds.base_url}/_sim/webhooks",
                                         json={"shop_id": creds.shop_id, "address": address}) as resp:
                resp.raise_for_status()
        except aiohttp.ClientError as exc:
            log.warning("could not subscribe webhooks of %s:%s: %s", creds.platform, creds.shop_id, exc)

    async def _flush_calls(self, stop: asyncio.Event) -> None:
        while True:
            if self._calls:
                batch, self._calls = self._calls, []
                await self.publisher.publish_async(batch)
            if stop.is_set():
                return
            await asyncio.sleep(0.5)
