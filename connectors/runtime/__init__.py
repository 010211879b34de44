"""Shared connector runtime: polling windows, checkpoints, rate limits, retries, call records, publishing."""
