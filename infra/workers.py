"""Entry points of the processes `tonglu up` supervises (each also runs alone: `tonglu worker NAME`)."""
from __future__ import annotations

import asyncio
import logging
import signal

from infra.config import Settings

log = logging.getLogger("tonglu")

DEMO_SHOPS = {"taobao": ["tonglu-home", "tonglu-tea"], "shopify": ["tonglu-demo"]}


def _run(coro_factory) -> None:
    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    asyncio.run(main())


def simulators(settings: Settings, demo_rate: float = 5.0) -> None:
    """Every platform simulator on its own port, with demo shops whose orders keep moving."""
    from aiohttp import web

    from connectors import platforms
    from connectors.simkit.server import AUTOPILOT, ensure_shop

    async def serve(stop):
        runners = []
        for platform, url in settings.simulators.items():
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            app = platforms.module(platform, "simulator").create_app()
            for shop in DEMO_SHOPS.get(platform, []) if demo_rate > 0 else []:
                ensure_shop(app, shop)
            app[AUTOPILOT].update(orders_per_second=demo_rate, steps_per_second=demo_rate * 1.5)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            log.info("%s simulator on http://127.0.0.1:%d (demo shops: %s)", platform, port,
                     ", ".join(DEMO_SHOPS.get(platform, [])) or "none")
        await stop.wait()
        for runner in runners:
            await runner.cleanup()

    _run(serve)


def connectors(settings: Settings) -> None:
    from connectors.runtime.service import ConnectorService, ConnectorSettings

    service = ConnectorService(ConnectorSettings(
        kafka_config=settings.kafka(), raw_topic=settings.topics.raw_orders,
        calls_topic=settings.topics.connector_calls, data_dir=settings.data_dir,
        shops_file=settings.shops_file, simulators=settings.simulators,
        webhook_host=settings.webhook_host_port[0], webhook_port=settings.webhook_host_port[1]))
    _run(service.run)


def normalizer(settings: Settings) -> None:
    import faust

    from streams.app import create_app

    app = create_app(kafka_config=settings.kafka(), topics=settings.topics, datadir=str(settings.data_dir / "faust"))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    worker.execute_from_commandline()


def projector(settings: Settings) -> None:
    from projections.clickhouse.backends import open_backend
    from projections.service import run_projector

    host, port = settings.http_host_port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(settings.clickhouse_url, str(settings.data_dir / "chdb"))
    topics = settings.topics

    async def serve(stop):
        await run_projector(
            kafka_config=settings.kafka(), backend=backend, http_host=host, http_port=port, stop=stop,
            topics={"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
                    "order_events": topics.order_events, "connector_calls": topics.connector_calls},
            normalizer_group=f"{topics.prefix}tonglu-normalizer", group_id=f"{topics.prefix}tonglu-projector")

    _run(serve)


WORKERS = {"simulators": simulators, "connectors": connectors, "normalizer": normalizer, "projector": projector}
