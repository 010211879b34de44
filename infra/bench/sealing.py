"""What sealing raw bodies costs per record: `python -m infra.bench.sealing` prints µs per record.

Sealing with the shared data key and with a data key per record, opening with the data key cached
and unwrapped each time, on a Shopify order and a Shopify list page from the recorded samples.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from connectors.runtime.records import raw_record
from schemas.codec import AvroCodec
from schemas.sealing import EnvKeyProvider, Opener, Sealer, new_key_spec

SAMPLES = Path(__file__).parents[2] / "connectors" / "platforms" / "shopify" / "samples"


def best_us(fn, n: int = 5000, repeat: int = 7) -> float:
    """Best of `repeat` runs of `n` calls, in µs per call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def figures(provider: EnvKeyProvider, body: bytes) -> dict[str, float]:
    """µs per record of sealing and opening `body` in the four ways."""
    shared, per_record = Sealer(provider), Sealer(provider, max_records=1)
    cached, uncached = Opener(provider), Opener(provider, cache_size=0)
    record_id, codec = uuid.uuid4().hex, AvroCodec("RawRecord")
    raws = [codec.decode(raw_record("shopify", "demo", body, source="poll", sealer=shared)) for _ in range(1000)]
    nth = iter(range(10**9))
    return {
        "seal, shared data key": best_us(lambda: shared.seal(body, record_id, "shopify", "demo")),
        "seal, data key per record": best_us(lambda: per_record.seal(body, record_id, "shopify", "demo")),
        "open, data key cached": best_us(lambda: cached.open(raws[next(nth) % 1000])),
        "open, unwrapping the data key": best_us(lambda: uncached.open(raws[0])),
    }


def main() -> None:
    provider = EnvKeyProvider(new_key_spec("bench"))
    for name in ("order_detail.json", "orders_list.json"):
        body = (SAMPLES / name).read_bytes()
        for label, us in figures(provider, body).items():
            print(f"{name} ({len(body):,} B)  {label:<30} {us:6.1f} µs")


if __name__ == "__main__":
    main()
