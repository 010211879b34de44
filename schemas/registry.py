"""Loading the `.avsc` contracts: parsed schemas, canonical forms and fingerprints."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastavro.schema import fingerprint, load_schema, parse_schema, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).parent
HISTORY_DIR = SCHEMA_DIR / "history"
NAMESPACE = "tonglu"


def schema_path(name: str) -> Path:
    """The file of a current schema, e.g. `Order` -> schemas/tonglu.Order.avsc."""
    return SCHEMA_DIR / f"{NAMESPACE}.{name}.avsc"


@cache
def current(name: str) -> dict:
    """The parsed current schema `name` with every named reference expanded."""
    return load_schema(str(schema_path(name)), _write_hint=False)


def canonical_form(schema: dict) -> str:
    return to_parsing_canonical_form(schema)


def fingerprint_of(schema: dict) -> bytes:
    """CRC-64-AVRO fingerprint of the parsing canonical form, little-endian as in single-object encoding."""
    return bytes.fromhex(fingerprint(canonical_form(schema), "CRC-64-AVRO"))


def current_names() -> list[str]:
    return sorted(p.name.split(".")[1] for p in SCHEMA_DIR.glob(f"{NAMESPACE}.*.avsc"))


@cache
def historical() -> dict[str, list[dict]]:
    """Earlier published versions by schema name (history/tonglu.Name.vN.avsc), oldest first."""
    out: dict[str, list[dict]] = {}
    for path in sorted(HISTORY_DIR.glob(f"{NAMESPACE}.*.v*.avsc")):
        name = path.name.split(".")[1]
        raw = json.loads(path.read_text(encoding="utf-8"))
        named = {} if _self_contained(raw) else _named_types()
        out.setdefault(name, []).append(parse_schema(raw, _write_hint=False, named_schemas=dict(named)))
    return out


def _self_contained(schema: dict) -> bool:
    """A history file written fully expanded defines its named types itself."""
    return '"type": "record"' in json.dumps(schema["fields"])


@cache
def _named_types() -> dict:
    named: dict = {}
    for name in current_names():
        parse_schema(current(name), named_schemas=named, _write_hint=False)
    return named


def plain(schema):
    """The schema without logical types, so timestamps stay epoch-millisecond ints in our code.

    Logical types are not part of the parsing canonical form, so fingerprints do not change.
    """
    if isinstance(schema, dict):
        return {k: plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [plain(v) for v in schema]
    return schema


@cache
def by_fingerprint() -> dict[bytes, dict]:
    """Every schema a writer may have used, current and historical, by fingerprint (plain, parsed)."""
    table = {fingerprint_of(current(n)): parse_schema(plain(current(n))) for n in current_names()}
    for versions in historical().values():
        for schema in versions:
            table.setdefault(fingerprint_of(schema), parse_schema(plain(schema)))
    return table
