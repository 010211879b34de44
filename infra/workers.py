"""Entry points of the processes `tonglu up` supervises (each also runs alone: `tonglu worker NAME`)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from infra.config import Settings
from infra.heartbeat import HeartbeatSender

log = logging.getLogger("tonglu")


def _run(coro_factory) -> None:
    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    asyncio.run(main())


def demo_rates(total: float, demo_shops: dict[str, list[str]]) -> dict[str, float]:
    """New demo orders per second of each platform's simulator: `total` split evenly over all demo shops,
    so the stack's load stays the same however many platforms there are."""
    shops = sum(len(names) for names in demo_shops.values())
    return {platform: total * len(names) / shops if shops and total > 0 else 0.0
            for platform, names in demo_shops.items()}


def simulators(settings: Settings, demo_rate: float = 5.0) -> None:
    """Every platform simulator on its own port, with demo shops whose orders keep moving (`demo_rate` new
    orders per second in all, see `demo_rates`); their worlds are kept under data_dir/simulators/ across
    restarts."""
    from aiohttp import web

    from connectors import platforms
    from connectors.simkit.persistence import keep_world_on_disk
    from connectors.simkit.server import AUTOPILOT, ensure_shop

    rates = demo_rates(demo_rate, {p: platforms.manifest(p).demo_shops for p in settings.simulators})

    async def serve(stop):
        runners = []
        for platform, url in settings.simulators.items():
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            app = platforms.module(platform, "simulator").create_app()
            keep_world_on_disk(app, settings.data_dir / "simulators" / f"{platform}.json")
            demo_shops = platforms.manifest(platform).demo_shops if rates[platform] > 0 else []
            for shop in demo_shops:
                # a platform Tonglu ships back to is shipped by the ERP simulator's warehouse, not the autopilot
                ensure_shop(app, shop, demo=True)["warehouse_ships"] = platforms.manifest(platform).capabilities.ship_back
            app[AUTOPILOT].update(orders_per_second=rates[platform], steps_per_second=rates[platform] * 1.5)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            log.info("%s 模拟器 simulator on http://127.0.0.1:%d (演示店铺 demo shops: %s; %.2g 笔新订单/秒 new orders/s)",
                     platforms.label(platform), port, ", ".join(demo_shops) or "无 none", rates[platform])
        runners.append(await _alert_simulators(settings))
        runners.append(await _tracking_simulator(settings, demo_rate > 0))
        runners.append(await _erp_simulator(settings, demo_rate > 0))
        runners.append(await _sms_simulators(settings))
        await stop.wait()
        for runner in runners:
            await runner.cleanup()
        _alert_simulators.smtp.stop()

    _run(serve)


async def _alert_simulators(settings: Settings):
    """DingTalk, Feishu, WeCom and SMS simulators on one port, and an SMTP sink they share a store with."""
    from aiohttp import web

    from connectors.alerts.simulators import create_app
    from connectors.alerts.smtp_sink import start_smtp_sink

    host, port = settings.alert_sim_host_port
    smtp = start_smtp_sink(host, settings.alert_smtp_port)
    _alert_simulators.smtp = smtp
    runner = web.AppRunner(create_app(store=smtp.store))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("alert simulators (DingTalk, Feishu, WeCom, SMS) on %s, SMTP on %s:%d — received: %s/_sim/messages",
             settings.alert_sim_http, host, settings.alert_smtp_port, settings.alert_sim_http)
    return runner


async def _tracking_simulator(settings: Settings, demo: bool):
    """The courier-tracking simulator (Kuaidi100 conventions); the demo shops' parcels move in seconds."""
    from aiohttp import web

    from connectors import platforms
    from connectors.tracking.simulator import create_app

    shops = frozenset((code, shop) for code, p in platforms.registry().items() for shop in p.manifest.demo_shops)
    runner = web.AppRunner(create_app(key=settings.kuaidi100_key, demo_shops=shops if demo else frozenset(),
                                      path=settings.data_dir / "simulators" / "tracking.json"), access_log=None)
    await runner.setup()
    host, port = settings.tracking_sim_host_port
    await web.TCPSite(runner, host, port).start()
    log.info("快递跟踪 courier-tracking simulator (Kuaidi100) on %s — parcels: %s/_sim/parcels",
             settings.tracking_sim_http, settings.tracking_sim_http)
    return runner


async def _erp_simulator(settings: Settings, demo: bool):
    """The ERP/WMS simulator; its warehouse ships the demo shops' paid orders through the API."""
    from aiohttp import web

    from connectors import platforms
    from connectors.erp.simulator import create_app
    from connectors.erp.warehouse import Warehouse

    shops = frozenset((code, shop) for code, p in platforms.registry().items() if p.manifest.capabilities.ship_back
                      for shop in p.manifest.demo_shops)  # the others have no ship API to post to
    token_path = settings.erp_sim_token_path

    def token() -> str | None:
        try:
            return token_path.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    warehouse = Warehouse(settings.http, token, shops if demo else frozenset())
    runner = web.AppRunner(create_app(warehouse=warehouse), access_log=None)
    await runner.setup()
    host, port = settings.erp_sim_host_port
    await web.TCPSite(runner, host, port).start()
    log.info("ERP/WMS 模拟器 simulator on %s (仓库 warehouse ships demo shops' paid orders) — received: "
             "%s/_sim/received", settings.erp_sim_http, settings.erp_sim_http)
    return runner


async def _sms_simulators(settings: Settings):
    """The SMS gateways (Aliyun, Tencent) and the platforms' message channels on one port, approving the
    configured templates and pushing reports and replies to the sender."""
    from aiohttp import web

    from connectors.sms.simulator import create_app
    from infra.sms_local import CALLBACK_TOKEN_ENV, simulator_state
    from streams.sms.templates import load_sms_config

    state = simulator_state(load_sms_config(settings.sms_config), settings.sms_callback_http,
                            os.environ.get(CALLBACK_TOKEN_ENV))
    runner = web.AppRunner(create_app(state))
    await runner.setup()
    host, port = settings.sms_sim_host_port
    await web.TCPSite(runner, host, port).start()
    log.info("短信模拟器 SMS simulators (Aliyun, Tencent, platform channels) on %s — received: %s/_sim/messages",
             settings.sms_sim_http, settings.sms_sim_http)
    return runner


def _beat(settings: Settings, stage: str, **checks) -> HeartbeatSender:
    """Start this process's heartbeat (see `infra.heartbeat`)."""
    return HeartbeatSender(settings.kafka(), settings.topics.heartbeats, stage, settings.heartbeat_seconds,
                           **checks).start()


def connectors(settings: Settings) -> None:
    from connectors.runtime.service import ConnectorService, ConnectorSettings
    from infra.raw_keys import require_keys

    log.info(require_keys())  # refuses to start without a key unless plain bodies were chosen

    service = ConnectorService(ConnectorSettings(
        kafka_config=settings.kafka(), raw_topic=settings.topics.raw_orders,
        calls_topic=settings.topics.connector_calls, data_dir=settings.data_dir,
        shops_file=settings.shops_file, simulators=settings.simulators,
        webhook_host=settings.webhook_host_port[0], webhook_port=settings.webhook_host_port[1],
        archive_retention_days=settings.archive_retention_days, logistics_topic=settings.topics.logistics_updates,
        tracking_secret=settings.tracking_secret))
    _beat(settings, "connectors")
    _run(service.run)


def normalizer(settings: Settings) -> None:
    import faust

    from infra.raw_keys import opening_note
    from streams.app import create_app

    log.info(opening_note())  # a bad key configuration stops it here, not record by record
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = create_app(kafka_config=settings.kafka(), topics=settings.topics, datadir=str(datadir))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    # It beats once it has joined its group: a process that is still starting (or rebalancing) is
    # not yet normalizing anything.
    _beat(settings, "normalizer", alive=lambda: app.rebalancing_count > 0 and not app.rebalancing)
    worker.execute_from_commandline()


def projector(settings: Settings) -> None:
    from connectors import platforms
    from infra.sms_local import member_importer
    from projections.api_auth import AuthConfig
    from projections.clickhouse.backends import open_backend
    from projections.health import HealthMonitor
    from projections.service import run_projector

    try:
        auth = AuthConfig.from_settings(settings)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if settings.projector_nice > 0:
        os.nice(settings.projector_nice)  # ClickHouse's own threads, started below, inherit it
    host, port = settings.http_host_port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(settings.clickhouse_url, str(settings.data_dir / "chdb"), settings.clickhouse_analyst_url)
    topics = settings.topics

    async def serve(stop):
        await run_projector(
            kafka_config=settings.kafka(), backend=backend, http_host=host, http_port=port, stop=stop, auth=auth,
            topics={"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
                    "order_events": topics.order_events, "connector_calls": topics.connector_calls,
                    "order_anomalies": topics.order_anomalies, "alerts": topics.alerts,
                    "order_commands": topics.order_commands, "fulfillment_results": topics.fulfillment_results,
                    "fulfillment_commands": topics.fulfillment_commands, "sms_receipts": topics.sms_receipts},
            normalizer_group=f"{topics.prefix}tonglu-normalizer", group_id=f"{topics.prefix}tonglu-projector",
            health=HealthMonitor(settings.kafka(), topics.heartbeats, settings.health_stale_seconds),
            heartbeat=lambda projector: HeartbeatSender(
                settings.kafka(), topics.heartbeats, "projector", settings.heartbeat_seconds, alive=projector.alive,
                progress=lambda: projector.counters()["total_events"]),
            platforms=platforms.catalogue(),
            member_import=member_importer(settings.kafka(), topics.sms_members, settings.data_dir))

    _run(serve)


def detector(settings: Settings) -> None:
    import threading

    from streams.anomaly_agent import AnomalyService

    service = AnomalyService(settings.kafka(), settings.topics, settings.anomaly_rules)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("anomaly detector: rules from %s", settings.anomaly_rules)
    _beat(settings, "detector")
    service.run(stop)


def alerter(settings: Settings) -> None:
    from streams.alert_agent import AlertService

    service = AlertService(settings.kafka(), settings.topics, settings.alert_routing)
    log.info("alert router: routes from %s", settings.alert_routing)
    _beat(settings, "alerter")
    _run(service.run)


def tracker(settings: Settings) -> None:
    """Every shipment a platform accepted, subscribed with the courier-tracking service."""
    from connectors.tracking.subscriber import Subscriber

    account = settings.tracking_account()
    subscriber = Subscriber(settings.kafka(), settings.topics.fulfillment_results,
                            f"{settings.topics.prefix}tonglu-tracker", account)
    log.info("物流跟踪 tracker: uploaded shipments -> %s, pushes to %s", account.poll_url, account.callback)
    _beat(settings, "tracker", progress=lambda: subscriber.subscribed)
    _run(subscriber.run)


def erp(settings: Settings) -> None:
    """The ERP deliverer: order.events to every endpoint of the ERP routing file."""
    from streams.erp.config import ErpConfigError, load_erp_routing
    from streams.erp_agent import ErpService

    try:
        endpoints = load_erp_routing(settings.erp_routing, settings.erp_variables())
        secrets = {e.name: e.secret() for e in endpoints}
    except ErpConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    service = ErpService(settings.kafka(), settings.topics, endpoints, secrets)
    log.info("ERP deliverer: %s from %s", ", ".join(f"{e.name} ({e.format}) → {e.url}" for e in endpoints)
             or "无端点 no endpoints", settings.erp_routing)
    _beat(settings, "erp", progress=service.delivered)
    _run(service.run)


def shipper(settings: Settings) -> None:
    """Ship-back: fulfillment.commands -> the platforms' ship APIs -> fulfillment.results (+ findings)."""
    from streams.ship_agent import ShipService

    service = ShipService(settings.kafka(), settings.topics, settings.shops_file, settings.simulators)
    log.info("ship-back: shipments from %s, outcomes to %s", settings.topics.fulfillment_commands,
             settings.topics.fulfillment_results)
    _beat(settings, "shipper", progress=lambda: service.counts["UPLOADED"])
    _run(service.run)


def notifier(settings: Settings) -> None:
    import threading

    from connectors.sms.contacts import resolvable
    from streams.sms.notifier import NotifierService
    from streams.sms.templates import SmsConfigError, load_sms_config

    try:
        config = load_sms_config(settings.sms_config)  # a bad file stops the start here, with the reason
    except SmsConfigError as exc:
        raise SystemExit(f"错误 error: {exc}") from None
    service = NotifierService(settings.kafka(), settings.topics, config, resolvable)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("短信触发 SMS notifier: templates and triggers from %s", settings.sms_config)
    _beat(settings, "notifier", alive=lambda: service.running, progress=lambda: service.requests)
    service.run(stop)


def sender(settings: Settings) -> None:
    from aiohttp import web

    from infra.sms_local import callback_token, hash_key
    from schemas.sealing import KeyConfigError, default_opener
    from streams.sms.callbacks import create_app
    from streams.sms.sender import SenderConfigError, SenderService, SenderSettings
    from streams.sms.templates import SmsConfigError, load_sms_config

    try:
        config = load_sms_config(settings.sms_config)
        service = SenderService(SenderSettings(
            kafka_config=settings.kafka(), topics=settings.topics, config=config, hash_key=hash_key(),
            environ=os.environ, opener=default_opener(), shops_file=settings.shops_file,
            simulators=settings.simulators))
    except (SmsConfigError, SenderConfigError, KeyConfigError) as exc:
        raise SystemExit(f"错误 error: {exc}") from None
    token = callback_token()

    async def serve(stop):
        runner = web.AppRunner(create_app(service, token))
        await runner.setup()
        host, port = settings.sms_callback_host_port
        await web.TCPSite(runner, host, port).start()
        log.info("短信发送 SMS sender: gateways %s; reports and replies on %s/sms/<provider>/…",
                 " → ".join(config.providers), settings.sms_callback_http)
        try:
            await service.run(stop)
        finally:
            await runner.cleanup()

    _beat(settings, "sender", alive=lambda: service.ready, progress=service.progress)
    _run(serve)


WORKERS = {"simulators": simulators, "connectors": connectors, "normalizer": normalizer, "projector": projector,
           "detector": detector, "alerter": alerter, "tracker": tracker, "erp": erp, "shipper": shipper,
           "notifier": notifier, "sender": sender}
