"""The pure side of ship-back: what became of each shipment (`ledger`), what to do with a command and how
outcomes are told (`outcomes`). The worker around them is `streams/ship_agent.py`."""
