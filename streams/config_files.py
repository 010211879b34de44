"""Reading the behaviour files (routing, rules) the streams processes validate at start: one line per problem."""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError


def read_toml(path: Path, error: type[ValueError]) -> dict:
    """The TOML document at `path`; `error` with one line naming the file when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def first_problem(exc: ValidationError) -> str:
    """`where: what (+N more)` of the first problem pydantic found."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
