"""The status page in headless Chromium lists every registered platform by its Chinese name, with its orders
and API health, from a projector on the real broker and chdb."""
import asyncio
import os
import re
import shutil
import time
import uuid

import aiohttp
import pytest

from connectors import platforms
from projections.access import Role
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from tests.integration.projector_helpers import produce, running_projector, wait_for
from tests.samples import sample_call, sample_event

pytestmark = pytest.mark.integration


def _browser() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    return browser


async def test_the_status_page_lists_every_platform_by_its_chinese_name(kafka_bootstrap, topics, tmp_path):
    browser = _browser()
    codes = platforms.codes()
    # platform n has n + 1 orders; every platform but the last made API calls, one in five failing
    events = [sample_event(code, "shopA", str(1000 + k), 1) for n, code in enumerate(codes) for k in range(n + 1)]
    now = int(time.time() * 1000)
    calls = [sample_call(f"{code}-{k}", code, "shopA", ok=k != 0, started_at=now - k * 1000)
             for code in codes[:-1] for k in range(5)]
    produce(kafka_bootstrap, topics.order_events,
            [(e["order_id"].encode(), v) for e, v in zip(events, AvroCodec("OrderEvent").encode_many(events))])
    produce(kafka_bootstrap, topics.connector_calls,
            [(f"{c['platform']}:shopA".encode(), v) for c, v in zip(calls, AvroCodec("ConnectorCall").encode_many(calls))])
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    store = TokenStore(tmp_path / "tokens.json")
    token, _ = store.create("page", Role.VIEWER)
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), f"norm-{uuid.uuid4().hex[:6]}",
                                 store, platforms=platforms.catalogue()) as base:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:

            async def all_there():
                async with http.get(base + "/api/stats") as resp:
                    rows = (await resp.json())["platforms"]
                return rows if sum(r["orders"] for r in rows) == len(events) and sum(
                    r["calls"] for r in rows) == len(calls) else None

            rows = await wait_for(all_there)
        assert [r["code"] for r in rows] == codes
        proc = await asyncio.create_subprocess_exec(
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom",
            f"{base}/#token={token}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        dom = (await asyncio.wait_for(proc.communicate(), 90))[0].decode()
    cells = dict(re.findall(r'<td data-platform="([a-z0-9_]+)">(.*?)</td>', dom))
    assert list(cells) == codes, dom[-2000:]
    for n, code in enumerate(codes):
        m = platforms.manifest(code)
        assert cells[code].startswith(m.names.zh), cells[code]  # Chinese first, English below when it differs
        row = re.search(rf'<td data-platform="{code}">.*?</tr>', dom).group(0)
        figures = re.findall(r"<td[^>]*>([^<]*)</td>", row.split("</td>", 1)[1])  # after the name
        assert figures[0] == str(n + 1), row  # its orders
        assert figures[2] == ("0" if code == codes[-1] else "5") and figures[3] == ("–" if code == codes[-1]
                                                                                     else "80.0%"), row
