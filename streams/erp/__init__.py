"""ERP delivery beside the deliverer agent (`streams.erp_agent`): the routing file (`config`), the retry
policy (`policy`), per-partition ordering and commits (`lanes`), rendering and sending (`sender`), replays
of the dead letters (`replay`). The formats, signatures, HTTP client and simulator are in `connectors.erp`.
"""
