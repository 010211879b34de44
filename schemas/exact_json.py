"""Platform JSON with ids beyond what a float holds: parse fast, and parse again exactly when an id lost
precision.

orjson keeps integers up to 64 bits exact but turns a bare integer beyond that into a float. A mapping's
id converter raises `LostPrecision` when it meets a float id; `map_exactly` then maps the body again,
parsed by the standard library, which keeps integers of any size exact. Only bodies carrying such ids
pay for the slow parse.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import orjson

from schemas.canonical import MappingError

T = TypeVar("T")

# What a mapping may raise on a payload of the wrong shape; map_exactly turns these into one-line MappingErrors.
_UNMAPPABLE = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError)


class LostPrecision(Exception):
    """An id came back as a float (an integer beyond 64 bits in orjson); the message names the field."""


def parse_json(body: bytes | str, exact: bool = False):
    """A JSON text -> Python objects: orjson, or with `exact` the standard library (integers of any size
    exact). MappingError 'malformed JSON: …' (the parser's first line) when it is not JSON."""
    try:
        return json.loads(body) if exact else orjson.loads(body)
    except (ValueError, TypeError) as exc:  # orjson's JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MappingError(f"malformed JSON: {(str(exc).splitlines() or [repr(exc)])[0]}") from None


def map_exactly(map_body: Callable[[bool], T], platform: str) -> T:
    """`map_body(False)`, or `map_body(True)` when that raised LostPrecision (`map_body(exact)` parses with
    `parse_json(body, exact)`). A float id even then is 'MappingError: <field> lost precision'; KeyError,
    TypeError, ValueError, AttributeError, ArithmeticError and RecursionError from the mapping become
    'MappingError: unmappable <platform> payload: …'. MappingErrors pass unchanged."""
    try:
        try:
            return map_body(False)
        except LostPrecision:
            return map_body(True)
    except MappingError:
        raise
    except LostPrecision as exc:
        raise MappingError(f"{exc} lost precision") from None
    except _UNMAPPABLE as exc:
        raise MappingError(f"unmappable {platform} payload: {exc.__class__.__name__}: {exc}") from None
