"""`tonglu normalize` and `tonglu sim orders` for every platform the registry finds, as an operator runs them."""
import asyncio
import json
import os
import sys

import pytest

from connectors import platforms
from connectors.simkit.server import WORLD
from tests.conformance.common import PLATFORMS, expected_orders, samples
from tests.integration.helpers import serve_app

CLI = [sys.executable, "-m", "infra.cli"]


def _first_sample_with_orders(platform: str):
    return next(((source, want) for _, source, expected in samples(platform)
                 if (want := expected_orders(expected))), None)


async def _cli(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_normalize_prints_a_recorded_payloads_canonical_orders(platform):
    source, want = _first_sample_with_orders(platform)
    code, out, err = await _cli("normalize", "--platform", platform, "--shop", want[0]["shop_id"], str(source))
    assert code == 0, err
    assert json.loads(out) == [dict(order, version=1) for order in want]
    assert err.strip() == f"{platforms.label(platform)} · 店铺 shop {want[0]['shop_id']}: {len(want)} 笔订单 orders"


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_sim_orders_creates_orders_in_the_platforms_simulator(platform, kafka_bootstrap):
    app = platforms.module(platform, "simulator").create_app()
    runner, base = await serve_app(app)
    env = {**os.environ, "TONGLU_SIMULATORS": f"{platform}={base}", "TONGLU_KAFKA_BOOTSTRAP": kafka_bootstrap}
    try:
        code, out, err = await _cli("sim", "orders", "--platform", platform, "--shop", "cli-shop", "--count", "3",
                                    env=env)
        assert code == 0, err
        order_ids = json.loads(out)
        made = {o.external_id for o in app[WORLD].orders.values() if o.shop_id == "cli-shop"}
        assert len(order_ids) == 3 and {oid.split(":")[-1] for oid in order_ids} == made
        assert all(oid.startswith(f"{platform}:cli-shop:") for oid in order_ids)
        assert f"{platforms.label(platform)} 模拟器 simulator" in err
    finally:
        await runner.cleanup()
