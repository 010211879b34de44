"""The SMS hub under test: the SMS and Shopify simulators served here, the notifier and sender as processes."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from connectors import platforms
from connectors.simkit.server import WORLD, ensure_shop
from connectors.sms.simulator import create_app as sms_sim_app
from infra.broker import free_port
from infra.sms_local import CALLBACK_TOKEN_ENV, HASH_KEY_ENV, demo_secrets, simulator_state
from schemas.codec import AvroCodec
from schemas.sealing import KEYS_ENV, new_key_spec
from schemas.topics import Topics
from streams.derive import derive_events
from streams.sms.templates import load_sms_config
from tests.integration.helpers import TopicReader, publish, serve_app, start_worker, stop_worker, worker_env

CONFIG_PATH = Path(__file__).parents[2] / "infra" / "sms.toml"
TOKEN, HASH_KEY = "test-callback-token-0123456789", "test-hash-key-0123456789abcdef"
RAW_KEYS = new_key_spec("t1")


def http_json(url: str, body: dict | None = None, method: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@dataclass
class SmsHub:
    kafka_bootstrap: str
    topics: Topics
    logs: Path
    sim: str = ""
    shopify: str = ""
    callback: str = ""
    env: dict = field(default_factory=dict)
    workers: dict = field(default_factory=dict)
    runners: list = field(default_factory=list)
    state: object = None
    shopify_app: object = None

    async def start(self, receipt_delay_s: float = 0.5, **env) -> SmsHub:
        config = load_sms_config(CONFIG_PATH, {})
        self.callback = f"http://127.0.0.1:{free_port()}"
        self.state = simulator_state(config, self.callback, TOKEN, receipt_delay_s)
        runner, self.sim = await serve_app(sms_sim_app(self.state))
        self.shopify_app = platforms.module("shopify", "simulator").create_app()
        shopify_runner, self.shopify = await serve_app(self.shopify_app)
        self.runners += [runner, shopify_runner]
        self.env = worker_env(self.kafka_bootstrap, self.topics, TONGLU_SMS_SIM_HTTP=self.sim,
                              TONGLU_SMS_CALLBACK_HTTP=self.callback, TONGLU_SIMULATORS=f"shopify={self.shopify}",
                              **{CALLBACK_TOKEN_ENV: TOKEN, HASH_KEY_ENV: HASH_KEY, KEYS_ENV: RAW_KEYS},
                              **demo_secrets(config), **env)
        return self

    def run(self, name: str, tag: str = "", key: str | None = None, **env) -> None:
        """Start worker `name`, logging to `name` + `tag`, kept as `key` (default `name`), with `env` on top."""
        self.workers[key or name] = start_worker(name, {**self.env, **env}, self.logs / f"{name}{tag}.log")

    def stop(self, name: str) -> int:
        return stop_worker(self.workers.pop(name))

    def kill(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.kill()
        proc.wait(10)

    async def close(self) -> dict[str, int]:
        codes = {name: stop_worker(proc) for name, proc in list(self.workers.items())}
        self.workers.clear()
        for runner in self.runners:
            await runner.cleanup()
        return codes

    async def messages(self, **query) -> list[dict]:
        """What the simulated providers received (the simulators run on this loop: never block it)."""
        args = "&".join(f"{k}={v}" for k, v in query.items())
        return (await self.control(f"/_sim/messages?{args}"))["messages"]

    async def control(self, path: str, body: dict | None = None, method: str | None = None):
        """A call to the SMS simulator's control API."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: http_json(f"{self.sim}{path}", body, method))

    async def wait_messages(self, count: int, timeout: float = 60.0, **query) -> list[dict]:
        deadline = time.time() + timeout
        found: list[dict] = []
        while time.time() < deadline:
            found = await self.messages(**query)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.3)
        raise AssertionError(f"only {len(found)} of {count} messages reached the simulator within {timeout}s")

    def shopify_orders(self, shop: str, count: int, now_ms: int) -> list[dict]:
        """New orders in the Shopify simulator, as the normalizer maps them."""
        ensure_shop(self.shopify_app, shop)
        world = self.shopify_app[WORLD]
        sims = world.create_orders(shop, count, now_ms)
        body = platforms.module("shopify", "render").page_body(sims)
        return platforms.map_payload("shopify", body, "json", shop)

    def taobao_orders(self, shop: str, count: int, now_ms: int) -> list[dict]:
        world = platforms.module("taobao", "simulator").create_app()[WORLD]
        body = platforms.module("taobao", "render").page_body(world.create_orders(shop, count, now_ms))
        return platforms.map_payload("taobao", body, "json", shop)

    def publish_events(self, orders: list[dict], now_ms: int, previous: dict | None = None) -> list[dict]:
        """Derive and publish the events of these orders (first sight, or after `previous` by order id)."""
        order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
        out, events = [], []
        for order in orders:
            derived = derive_events((previous or {}).get(order["order_id"]), order, now_ms)
            body = order_codec.encode_body(order)
            out += [(self.topics.order_events, order["order_id"].encode(), event_codec.encode_with_tail(e, body))
                    for e in derived]
            events += derived
        publish(self.kafka_bootstrap, out)
        return events


async def sender_stats(hub: SmsHub) -> dict:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: http_json(f"{hub.callback}/sms/stats"))


async def until_requests_seen(hub: SmsHub, count: int, timeout: float = 60.0) -> dict:
    """Wait until the sender has read `count` requests (duplicates included): the barrier before asserting that
    nothing more was sent."""
    deadline = time.time() + timeout
    stats: dict = {}
    while time.time() < deadline:
        try:
            stats = await sender_stats(hub)
        except OSError:
            stats = {}
        if stats.get("requests", 0) >= count:
            return stats
        await asyncio.sleep(0.3)
    raise AssertionError(f"the sender read {stats.get('requests')} of {count} requests within {timeout}s")


@contextlib.asynccontextmanager
async def hub_running(kafka_bootstrap: str, topics: Topics, logs: Path, workers=("notifier", "sender"), **env):
    """An SmsHub with `workers` started and a reader of sms.receipts: (hub, receipts). On a clean exit every worker
    must have stopped cleanly on SIGTERM."""
    hub = await SmsHub(kafka_bootstrap, topics, logs).start(**env)
    receipts = TopicReader(kafka_bootstrap, topics.sms_receipts, "SmsReceipt")
    try:
        for name in workers:
            hub.run(name)
        yield hub, receipts
    finally:
        receipts.close()
        codes = await hub.close()
    assert set(codes.values()) <= {0}, f"a worker did not exit cleanly on SIGTERM: {codes}"
