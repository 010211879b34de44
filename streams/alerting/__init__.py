"""Alert routing beside the alerts agent: pure policy (`policy`, `messages`, `config`) and `delivery`.

Flow: `order.anomalies` → `AlertRouter.offer` → `AlertRouter.due` → `deliver` (channels from
`connectors.alerts.channels`) → a `DeliveryReport` per message (the agent publishes it to `alerts` and
ClickHouse).
"""
