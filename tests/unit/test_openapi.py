"""/api/openapi.json: valid OpenAPI 3.1, describing exactly the registered routes, with the roles of the
route table; its webhook schema accepts what the deliverer sends and refuses what it does not."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import jsonschema
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.erp.payloads import webhook_body
from projections.access import OPEN, PLANNED, ROUTES
from projections.api import create_api
from projections.api_auth import AuthConfig
from projections.openapi import document, json_schema
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from tests.samples import sample_event

METHODS = {"get", "post", "put", "patch", "delete"}


def _app(tmp_path):
    deps = SimpleNamespace(backend=None, database="tonglu")
    return create_api(deps, AuthConfig(TokenStore(tmp_path / "tokens.json")))


def _described(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops if method in METHODS}


def test_the_document_is_valid_openapi():
    validate(document())


def test_every_registered_route_is_described_and_nothing_else(tmp_path):
    registered = {(r.method, r.resource.canonical) for r in _app(tmp_path).router.routes() if r.method != "HEAD"}
    described = _described(document())
    assert registered - described == set(), "registered but not described in projections/openapi.py"
    assert described - registered - PLANNED == set(), "described but not registered"


def test_each_operation_names_the_role_of_the_route_table():
    for (method, path), rule in ROUTES.items():
        op = document()["paths"][path][method.lower()]
        assert op["x-tonglu-role"] == ("open" if rule.role is OPEN else rule.role.label)
        assert (op.get("security") == []) == (rule.role is OPEN)


async def test_the_api_serves_it_without_a_token(tmp_path):
    async with TestClient(TestServer(_app(tmp_path))) as client:
        resp = await client.get("/api/openapi.json")
        assert resp.status == 200 and (await resp.json()) == document()


def _webhook_validator() -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource("tonglu.json", Resource(contents=document(), specification=DRAFT202012))
    schema = {"$ref": "tonglu.json#/components/schemas/ErpOrderEvent"}
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())


def test_the_webhook_schema_fits_what_the_deliverer_sends():
    event = AvroCodec("OrderEvent").decode(AvroCodec("OrderEvent").encode(sample_event(version=3)))
    body = orjson.loads(webhook_body(event))
    validator = _webhook_validator()
    validator.validate(body)
    broken = copy.deepcopy(body)
    del broken["order"]["lines"][0]["quantity"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**body, "order": {**body["order"], "status": "LOST"}})


def test_avro_to_json_schema():
    assert json_schema(["null", {"type": "long", "logicalType": "timestamp-millis"}]) == {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    enum = {"type": "enum", "name": "E", "namespace": "tonglu", "symbols": ["A", "B"]}
    record = {"type": "record", "name": "R", "namespace": "tonglu", "fields": [
        {"name": "a", "type": enum, "doc": "first"}, {"name": "b", "type": {"type": "array", "items": "tonglu.E"}}]}
    schema = json_schema(record)
    assert schema["required"] == ["a", "b"] and schema["properties"]["a"]["description"] == "first"
    assert schema["properties"]["b"] == {"type": "array", "items": {"type": "string", "enum": ["A", "B"]}}
