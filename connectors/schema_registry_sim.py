"""A local stand-in for the Confluent Schema Registry REST API (the subset Tonglu uses).

- POST /subjects/{subject}/versions {"schema": "<json>"} -> {"id": N} (the same schema gets the same id)
- GET  /schemas/ids/{id}                                 -> {"schema": "<json>"}
- GET  /subjects                                         -> ["subject", ...]
"""
from __future__ import annotations

import json

from aiohttp import web
from fastavro.schema import parse_schema, to_parsing_canonical_form

SCHEMAS = web.AppKey("schemas", dict)
SUBJECTS = web.AppKey("subjects", dict)


def create_app() -> web.Application:
    app = web.Application()
    app[SCHEMAS], app[SUBJECTS] = {}, {}
    app.router.add_post("/subjects/{subject}/versions", _register)
    app.router.add_get("/schemas/ids/{schema_id}", _schema)
    app.router.add_get("/subjects", _subjects)
    return app


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"error_code": code, "message": message}, status=status)


async def _register(request: web.Request) -> web.Response:
    try:
        text = (await request.json())["schema"]
        canonical = to_parsing_canonical_form(parse_schema(json.loads(text)))
    except (ValueError, KeyError, TypeError) as exc:
        return _error(422, 42201, f"Invalid schema: {exc}")
    schemas = request.app[SCHEMAS]
    schema_id = next((i for i, (c, _) in schemas.items() if c == canonical), None)
    if schema_id is None:
        schema_id = len(schemas) + 1
        schemas[schema_id] = (canonical, text)
    versions = request.app[SUBJECTS].setdefault(request.match_info["subject"], [])
    if schema_id not in versions:
        versions.append(schema_id)
    return web.json_response({"id": schema_id})


async def _schema(request: web.Request) -> web.Response:
    entry = request.app[SCHEMAS].get(int(request.match_info["schema_id"]))
    if entry is None:
        return _error(404, 40403, "Schema not found")
    return web.json_response({"schema": entry[1]})


async def _subjects(request: web.Request) -> web.Response:
    return web.json_response(sorted(request.app[SUBJECTS]))
