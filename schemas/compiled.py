"""Schema-compiled Avro encoders and decoders for our own record types.

fastavro resolves every union by validating each branch in turn, which costs ~2 µs per nullable
field; an order has ~30 of them. These functions are generated once from the parsed `.avsc`
schema (records, arrays, maps, enums, primitives and ["null", T] unions — all our contracts use) and
produce byte-for-byte what fastavro's schemaless writer produces (tests check this on random data).
Anything else (an older writer schema, an unsupported construct) goes through fastavro.
"""
from __future__ import annotations

import struct

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_SMALL = [bytes([n]) if n < 128 else bytes([(n & 0x7F) | 0x80, n >> 7]) for n in range(16384)]
_MID = [bytes([(n & 0x7F) | 0x80, (n >> 7) | 0x80]) for n in range(16384)]  # 14 bits, more bytes follow
# Longs beyond two bytes are mostly timestamps and prices, which repeat across a batch.
_LONGS: dict[int, bytes] = {}
_LONGS_MAX = 16384


class Unsupported(Exception):
    """The schema uses a construct the compiler does not handle; use fastavro."""


def write_long(n: int) -> bytes:
    """Avro zig-zag varint."""
    out = _LONGS.get(n)
    if out is not None and n.__class__ is int:  # a float equal to a cached int must still be refused
        return out
    if not -0x8000000000000000 <= n <= 0x7FFFFFFFFFFFFFFF:  # would be a varint no other reader accepts
        raise ValueError(f"{n} does not fit an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < 16384:
        return _SMALL[z]
    out = b""
    while z >= 16384:  # 14 bits (two varint bytes) at a time
        out += _MID[z & 0x3FFF]
        z >>= 14
    out += _SMALL[z]
    if len(_LONGS) >= _LONGS_MAX:
        _LONGS.clear()
    _LONGS[n] = out
    return out


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result, shift = byte & 0x7F, 7
    pos += 1
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


_ENV = {"_long": write_long, "_small": _SMALL, "_rlong": read_long,
        "_pd": struct.Struct("<d").pack, "_pf": struct.Struct("<f").pack,
        "_ud": struct.Struct("<d").unpack_from, "_uf": struct.Struct("<f").unpack_from}


class _Gen:
    def __init__(self):
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self.named: dict[str, dict] = {}
        self.depth = 0
        self.defaults = True  # False: read every record field with r[name], even those with a default

    def const(self, value) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def var(self) -> str:
        self.depth += 1
        return f"v{self.depth}"

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def resolve(self, schema):
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema]
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            self.named[schema["name"]] = schema
        return schema

    @staticmethod
    def kind(schema) -> str:
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return "union"
        return schema["type"] if isinstance(schema["type"], str) else "nested"


def _nullable(schema: list) -> object:
    if len(schema) != 2 or "null" not in schema:
        raise Unsupported(f"union {schema}")
    return schema[1] if schema[0] == "null" else schema[0]


def _write_int(g: _Gen, expr: str, ind: int, length: bool = False) -> None:
    """Inline the one- and two-byte cases of a zig-zag varint (-8192..8191), call write_long otherwise."""
    x = g.var()
    g.emit(ind, f"{x} = {expr}")
    if length:  # never negative
        g.emit(ind, f"if {x} < 64: b.append({x} << 1)")
        g.emit(ind, f"elif {x} < 8192: b += _small[{x} << 1]")
    else:
        g.emit(ind, f"if 0 <= {x} < 64: b.append({x} << 1)")
        g.emit(ind, f"elif -8192 <= {x} < 8192: b += _small[({x} << 1) ^ ({x} >> 63)]")
    g.emit(ind, f"else: b += _long({x})")


def _enc(g: _Gen, schema, expr: str, ind: int) -> None:
    schema = g.resolve(schema)
    kind = g.kind(schema)
    if kind == "null":
        return
    if kind == "boolean":
        g.emit(ind, f"b.append(1 if {expr} else 0)")
    elif kind in ("int", "long"):
        _write_int(g, expr, ind)
    elif kind == "double":
        g.emit(ind, f"b += _pd({expr})")
    elif kind == "float":
        g.emit(ind, f"b += _pf({expr})")
    elif kind == "string":
        v = g.var()
        g.emit(ind, f"{v} = {expr}.encode()")
        _write_int(g, f"len({v})", ind, length=True)
        g.emit(ind, f"b += {v}")
    elif kind == "bytes":
        v = g.var()
        g.emit(ind, f"{v} = {expr}")
        _write_int(g, f"len({v})", ind, length=True)
        g.emit(ind, f"b += {v}")
    elif kind == "enum":
        table = g.const({s: write_long(i) for i, s in enumerate(schema["symbols"])})
        g.emit(ind, f"b += {table}[{expr}]")
    elif kind == "union":
        inner = _nullable(schema)
        null_index = schema.index("null")
        v = g.var()
        g.emit(ind, f"{v} = {expr}")
        g.emit(ind, f"if {v} is None: b.append({null_index * 2})")
        g.emit(ind, "else:")
        g.emit(ind + 1, f"b.append({(1 - null_index) * 2})")
        _enc(g, inner, v, ind + 1)
    elif kind == "array":
        v, item = g.var(), g.var()
        g.emit(ind, f"{v} = {expr}")
        g.emit(ind, f"if {v}:")
        _write_int(g, f"len({v})", ind + 1, length=True)
        g.emit(ind + 1, f"for {item} in {v}:")
        _enc(g, schema["items"], item, ind + 2)
        g.emit(ind, "b.append(0)")
    elif kind == "map":
        v, key, val = g.var(), g.var(), g.var()
        g.emit(ind, f"{v} = {expr}")
        g.emit(ind, f"if {v}:")
        _write_int(g, f"len({v})", ind + 1, length=True)
        g.emit(ind + 1, f"for {key}, {val} in {v}.items():")
        _enc(g, "string", key, ind + 2)
        _enc(g, schema["values"], val, ind + 2)
        g.emit(ind, "b.append(0)")
    elif kind == "record":
        v = g.var()
        g.emit(ind, f"{v} = {expr}")
        for field in schema["fields"]:
            getter = (f"{v}.get({field['name']!r}, {g.const(field['default'])})"
                      if "default" in field and g.defaults else f"{v}[{field['name']!r}]")
            _enc(g, field["type"], getter, ind)
    elif kind == "nested":
        _enc(g, schema["type"], expr, ind)
    else:
        raise Unsupported(kind)


def _read_int(g: _Gen, target: str, ind: int) -> None:
    """Inline the one-byte case of a varint (most lengths, counts, indexes and small numbers)."""
    x = g.var()
    g.emit(ind, f"{x} = d[p]")
    g.emit(ind, f"if {x} < 128: {target} = ({x} >> 1) ^ -({x} & 1); p += 1")
    g.emit(ind, f"else: {target}, p = _rlong(d, p)")


def _dec(g: _Gen, schema, target: str, ind: int) -> None:
    """Emit code that reads one value at `p` from `d` into `target`."""
    schema = g.resolve(schema)
    kind = g.kind(schema)
    if kind == "null":
        g.emit(ind, f"{target} = None")
    elif kind == "boolean":
        g.emit(ind, f"{target} = d[p] == 1; p += 1")
    elif kind in ("int", "long"):
        _read_int(g, target, ind)
    elif kind == "double":
        g.emit(ind, f"{target}, = _ud(d, p); p += 8")
    elif kind == "float":
        g.emit(ind, f"{target}, = _uf(d, p); p += 4")
    elif kind in ("string", "bytes"):
        n = g.var()
        _read_int(g, n, ind)
        if kind == "string":
            g.emit(ind, f"{target} = d[p:p + {n}].decode(); p += {n}")
        else:
            g.emit(ind, f"{target} = bytes(d[p:p + {n}]); p += {n}")
    elif kind == "enum":
        table = g.const(list(schema["symbols"]))
        i = g.var()
        _read_int(g, i, ind)
        g.emit(ind, f"{target} = {table}[{i}]")
    elif kind == "union":
        inner = _nullable(schema)
        null_index = schema.index("null")
        i = g.var()  # the branch index of a two-branch union is one byte: 0 or 2 (zig-zag 0 or 1)
        g.emit(ind, f"{i} = d[p]; p += 1")
        g.emit(ind, f"if {i} == {null_index * 2}: {target} = None")
        g.emit(ind, f"elif {i} == {(1 - null_index) * 2}:")
        _dec(g, inner, target, ind + 1)
        g.emit(ind, "else: raise ValueError('union index out of range')")
    elif kind == "array":
        items, n, item = g.var(), g.var(), g.var()
        g.emit(ind, f"{items} = []")
        g.emit(ind, "while True:")
        _read_int(g, n, ind + 1)
        g.emit(ind + 1, f"if {n} == 0: break")
        g.emit(ind + 1, f"if {n} < 0: {n} = -{n}; _, p = _rlong(d, p)")
        g.emit(ind + 1, f"for _ in range({n}):")
        _dec(g, schema["items"], item, ind + 2)
        g.emit(ind + 2, f"{items}.append({item})")
        g.emit(ind, f"{target} = {items}")
    elif kind == "map":
        items, n, key, val = g.var(), g.var(), g.var(), g.var()
        g.emit(ind, f"{items} = {{}}")
        g.emit(ind, "while True:")
        _read_int(g, n, ind + 1)
        g.emit(ind + 1, f"if {n} == 0: break")
        g.emit(ind + 1, f"if {n} < 0: {n} = -{n}; _, p = _rlong(d, p)")
        g.emit(ind + 1, f"for _ in range({n}):")
        _dec(g, "string", key, ind + 2)
        _dec(g, schema["values"], val, ind + 2)
        g.emit(ind + 2, f"{items}[{key}] = {val}")
        g.emit(ind, f"{target} = {items}")
    elif kind == "record":
        _dec_fields(g, schema["fields"], target, ind)
    elif kind == "nested":
        _dec(g, schema["type"], target, ind)
    else:
        raise Unsupported(kind)


def _dec_fields(g: _Gen, fields: list, target: str, ind: int, keep=None) -> None:
    """Read a record's fields into locals, then build its dict in one go (cheaper than item by item);
    fields not in `keep` (when given) are skipped."""
    built = []
    for field in fields:
        if keep is not None and field["name"] not in keep:
            _skip(g, field["type"], ind)
            continue
        v = g.var()
        _dec(g, field["type"], v, ind)
        built.append(f"{field['name']!r}: {v}")
    g.emit(ind, f"{target} = {{{', '.join(built)}}}")


def _build(g: _Gen, name: str, header: list[str], body_end: list[str]):
    source = "\n".join(header + g.lines + body_end)
    namespace = dict(_ENV, **g.consts)
    exec(compile(source, f"<avro {name}>", "exec"), namespace)  # noqa: S102 - code generated from our schema
    return namespace[name]


def compile_encoder(schema: dict):
    """`encode(record) -> bytes` (Avro binary body) for a plain (no logical types) record schema.

    Records normally carry every field, so the fast version reads them all with r[name]; on any
    error (a field left to its default, or an invalid record) the exact version, which reads fields
    with defaults through .get, encodes the record or raises.
    """
    g = _Gen()
    _enc(g, schema, "r", 1)
    exact = _build(g, "encode", ["def encode(r):", "    b = bytearray()"], ["    return bytes(b)"])
    g = _Gen()
    g.defaults = False
    _enc(g, schema, "r", 2)
    g.consts["_exact"] = exact
    return _build(g, "encode", ["def encode(r):", "    b = bytearray()", "    try:"],
                  ["    except Exception:", "        return _exact(r)", "    return bytes(b)"])


def compile_decoder(schema: dict, keep=None):
    """`decode(data, pos=0) -> (record, end)` for data written with exactly this schema.

    With `keep` (top-level field names) the other fields are only walked over, not built: a reader
    that needs a few fields of a large record pays for those.
    """
    g = _Gen()
    if keep is None:
        _dec(g, schema, "out", 1)
    else:
        _dec_fields(g, g.resolve(schema)["fields"], "out", 1, frozenset(keep))
    return _build(g, "decode", ["def decode(d, p=0):"], ["    return out, p"])


def _skip_int(g: _Gen, ind: int, target: str | None = None) -> None:
    """Advance over one varint; keep its value in `target` when given."""
    if target is None:
        g.emit(ind, "while d[p] & 0x80: p += 1")
        g.emit(ind, "p += 1")
    else:
        _read_int(g, target, ind)


def _skip(g: _Gen, schema, ind: int) -> None:
    """Emit code that checks the framing of one value at `p` and advances past it."""
    schema = g.resolve(schema)
    kind = g.kind(schema)
    if kind == "null":
        return
    if kind == "boolean":
        g.emit(ind, "if d[p] > 1: raise ValueError('boolean byte out of range')")
        g.emit(ind, "p += 1")
    elif kind in ("int", "long"):
        _skip_int(g, ind)
    elif kind in ("double", "float"):
        g.emit(ind, f"p += {8 if kind == 'double' else 4}")
    elif kind in ("string", "bytes"):
        n = g.var()
        _skip_int(g, ind, n)
        g.emit(ind, f"if {n} < 0: raise ValueError('negative length')")
        g.emit(ind, f"p += {n}")
    elif kind == "enum":
        i = g.var()
        _skip_int(g, ind, i)
        g.emit(ind, f"if not 0 <= {i} < {len(schema['symbols'])}: raise ValueError('enum index out of range')")
    elif kind == "union":
        inner = _nullable(schema)
        null_index = schema.index("null")
        i = g.var()
        _skip_int(g, ind, i)
        g.emit(ind, f"if {i} == {1 - null_index}:")
        g.emit(ind + 1, "pass")
        _skip(g, inner, ind + 1)
        g.emit(ind, f"elif {i} != {null_index}: raise ValueError('union index out of range')")
    elif kind in ("array", "map"):
        n = g.var()
        g.emit(ind, "while True:")
        _skip_int(g, ind + 1, n)
        g.emit(ind + 1, f"if {n} == 0: break")
        g.emit(ind + 1, f"if {n} < 0: {n} = -{n}; _, p = _rlong(d, p)")
        g.emit(ind + 1, f"for _ in range({n}):")
        g.emit(ind + 2, "pass")
        if kind == "map":
            _skip(g, "string", ind + 2)
        _skip(g, schema["items"] if kind == "array" else schema["values"], ind + 2)
    elif kind == "record":
        for field in schema["fields"]:
            _skip(g, field["type"], ind)
    elif kind == "nested":
        _skip(g, schema["type"], ind)
    else:
        raise Unsupported(kind)


def compile_skipper(schema: dict):
    """`skip(data, pos=0) -> end`: walks one record written with exactly this schema without building it,
    raising (IndexError/ValueError) where the bytes cannot be such a record."""
    g = _Gen()
    _skip(g, schema, 1)
    return _build(g, "skip", ["def skip(d, p=0):"], ["    return p"])
