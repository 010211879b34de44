"""Avro contracts of Tonglu and the pure canonical order model."""
