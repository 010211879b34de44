"""A small client of the Confluent Schema Registry REST API (register, fetch by id).

Subjects follow the RecordNameStrategy (`tonglu.Order`, `tonglu.OrderEvent`, ...): a record type
has one subject whatever topic carries it.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import cache

from fastavro.schema import parse_schema

from schemas.registry import plain

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryError(RuntimeError):
    pass


class SchemaRegistryClient:
    def __init__(self, url: str, timeout: float = 10.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self._by_id: dict[int, dict] = {}

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": _CONTENT_TYPE, "Accept": _CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise SchemaRegistryError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SchemaRegistryError(f"schema registry {self.url} unreachable: {exc}") from None

    def register(self, name: str, canonical_schema: str) -> int:
        """Register (or find) the schema under subject `tonglu.<name>`; returns its global id."""
        return int(self._call("POST", f"/subjects/tonglu.{name}/versions", {"schema": canonical_schema})["id"])

    def schema(self, schema_id: int) -> dict:
        """The parsed (plain) writer schema with this id, cached."""
        if schema_id not in self._by_id:
            text = self._call("GET", f"/schemas/ids/{schema_id}")["schema"]
            self._by_id[schema_id] = parse_schema(plain(json.loads(text)))
        return self._by_id[schema_id]


@cache
def client_for(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient(url)
