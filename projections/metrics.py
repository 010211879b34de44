"""Prometheus metrics of the projector, on a dedicated registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ProjectorMetrics:
    """Counters updated by the consumer thread; gauges refreshed by the API before each scrape."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.consumed = Counter(
            "tonglu_projector_records_consumed",
            "Records consumed by topic",
            ["topic"],
            registry=self.registry,
        )
        self.undecodable = Counter(
            "tonglu_projector_undecodable",
            "Records that could not be decoded",
            ["topic"],
            registry=self.registry,
        )
        self.flush_seconds = Histogram(
            "tonglu_projector_flush_seconds",
            "Duration of one ClickHouse flush",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.flush_failures = Counter(
            "tonglu_projector_flush_failures", "Failed flushes (retried)", registry=self.registry
        )
        self.lag = Gauge(
            "tonglu_normalizer_lag",
            "Normalizer lag on raw.orders by partition",
            ["partition"],
            registry=self.registry,
        )
        self.orders = Gauge(
            "tonglu_orders", "Orders by platform and status", ["platform", "status"], registry=self.registry
        )

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
