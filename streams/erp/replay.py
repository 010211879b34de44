"""`tonglu erp replay --endpoint E [--since T]`: deliver an endpoint's dead letters again.

Reads erp.dlq to its end, takes the endpoint's dead letters failed at or after `since` (once per event
id), and sends them with the endpoint's format and secret — each order's events one after another in
version order, orders side by side. A dead letter that fails again is dead-lettered again (reason
prefixed "replay:"), so nothing is lost; its older record stays, and the receiver drops repeats by
`X-Tonglu-Event-Id`.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import Publisher, read_to_end
from schemas.topics import Topics, murmur2
from streams.erp.config import Endpoint, Retry
from streams.erp.lanes import Delivery
from streams.erp.policy import Outcome, backoff_s
from streams.erp.sender import Sender, dead_letter


def select(records: list[dict], endpoint: str, since_ms: int | None) -> list[dict]:
    """The dead letters of `endpoint` failed at or after `since_ms`, the first record of each event id,
    in the order they were dead-lettered (undecodable events, which have no id, each count)."""
    chosen, seen = [], set()
    for record in records:
        if record["endpoint"] != endpoint or (since_ms is not None and record["failed_at"] < since_ms):
            continue
        event_id = record["event_id"]
        if event_id and event_id in seen:
            continue
        seen.add(event_id)
        chosen.append(record)
    return chosen


def per_order(records: list[dict]) -> dict[str, list[dict]]:
    """Dead letters by order, each order's in version order (then in the order they were read)."""
    orders: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        orders[record["order_id"]].append(record)
    return {order: sorted(rows, key=lambda r: (r["version"], r["offset"])) for order, rows in orders.items()}


def read_dead_letters(kafka_config: dict, topics: Topics, timeout: float = 120.0) -> list[dict]:
    codec, records = AvroCodec("ErpDeadLetter"), []
    for batch in read_to_end(kafka_config, [topics.erp_dlq], idle=1.0, timeout=timeout,
                             group=f"{topics.prefix}tonglu-erp-replay"):
        for msg in batch:
            try:
                records.append(codec.decode(msg.value()))
            except DecodeError:
                continue
    return records


async def _deliver_order(sender: Sender, rows: list[dict], attempts: int, retry: Retry,
                         slots: asyncio.Semaphore) -> tuple[int, int, list[dict]]:
    """(delivered, undecodable, new dead letters) of one order's dead letters."""
    delivered, undecodable, failed = 0, 0, []
    lane = murmur2(rows[0]["order_id"].encode()) & 0x7FFFFFFF
    for row in rows:
        delivery = Delivery(lane, row["offset"], row["order_id"], row["event"])
        try:
            sender.read(delivery)
            sender.render(delivery)
        except (DecodeError, KeyError, TypeError, ValueError):
            undecodable += 1  # it stays in erp.dlq as it is: sending it again cannot help
            continue
        outcome = Outcome(False, "not attempted")
        for attempt in range(1, attempts + 1):
            async with slots:
                outcome = await sender.attempt(delivery)
            if outcome.ok:
                break
            delivery.failed_attempts = attempt
            if attempt < attempts:
                await asyncio.sleep(backoff_s(attempt, retry, random.random(), outcome.retry_after_s))
        if outcome.ok:
            delivered += 1
        else:
            failed.append(dead_letter(sender.endpoint.name, delivery, Outcome(
                False, f"replay: {outcome.reason}", outcome.status), row["topic"], int(time.time() * 1000)))
    return delivered, undecodable, failed


async def replay(kafka_config: dict, topics: Topics, endpoint: Endpoint, secret: str, since_ms: int | None,
                 attempts: int = 3) -> dict:
    """Deliver the endpoint's dead letters again (see the module); figures of what happened."""
    records = await asyncio.to_thread(read_dead_letters, kafka_config, topics)
    chosen = select(records, endpoint.name, since_ms)
    sender = Sender(endpoint, secret)
    slots = asyncio.Semaphore(endpoint.connections * endpoint.pipeline)
    retry = Retry(max_attempts=attempts, initial_s=endpoint.retry.initial_s, max_s=min(endpoint.retry.max_s, 5.0))
    try:
        results = await asyncio.gather(*(_deliver_order(sender, rows, attempts, retry, slots)
                                         for rows in per_order(chosen).values()))
    finally:
        await sender.close()
    failed = [record for _, _, rows in results for record in rows]
    if failed:
        codec, publisher = AvroCodec("ErpDeadLetter"), Publisher(kafka_config)
        await publisher.publish_async([(topics.erp_dlq, r["order_id"].encode(), codec.encode(r)) for r in failed])
        publisher.close()
    return {"endpoint": endpoint.name, "dead_letters": len(records), "selected": len(chosen),
            "delivered": sum(n for n, _, _ in results), "failed_again": len(failed),
            "undecodable": sum(n for _, n, _ in results), "topic": topics.erp_dlq}
