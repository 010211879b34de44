"""Topic names and layout (the contract in design.md). A prefix gives tests their own fresh topics."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def _n(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def raw_orders(self) -> str:
        return self._n("raw.orders")

    @property
    def raw_orders_dlq(self) -> str:
        return self._n("raw.orders.dlq")

    @property
    def order_events(self) -> str:
        return self._n("order.events")

    @property
    def order_state(self) -> str:
        return self._n("order.state")

    @property
    def connector_calls(self) -> str:
        return self._n("connector.calls")

    @property
    def order_anomalies(self) -> str:
        return self._n("order.anomalies")

    @property
    def order_commands(self) -> str:
        return self._n("order.commands")

    @property
    def alerts(self) -> str:
        return self._n("alerts")

    def specs(self) -> list[TopicSpec]:
        return [TopicSpec(self.raw_orders), TopicSpec(self.raw_orders_dlq), TopicSpec(self.order_events),
                TopicSpec(self.order_state, compacted=True), TopicSpec(self.connector_calls),
                TopicSpec(self.order_anomalies), TopicSpec(self.order_commands), TopicSpec(self.alerts)]
