"""Courier tracking: the tracking service's conventions (`kuaidi100`), its local simulator, the receiver of
its pushes (`/webhooks/kuaidi100`) and the worker that subscribes every uploaded shipment (`subscriber`).

`SERVICES` names the tracking services whose pushes the normalizer reads (RawRecord kind `logistics`,
`endpoint` = the service): each gives `read_push(body) -> (param, sign)` and `tracking_update(param)`.
"""
from connectors.tracking import kuaidi100

SERVICES = {kuaidi100.SERVICE: kuaidi100}
