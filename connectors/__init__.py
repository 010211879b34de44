"""Every edge to the outside world: platform clients, mappings and simulators, and the connector runtime."""
