"""Shared connector runtime: polling windows, checkpoints, rate limits, retries, call records, publishing,
and a lean keep-alive HTTP/1.1 client (`http1`) for endpoints called thousands of times a second."""
