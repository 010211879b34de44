"""Vet analysts' SQL on ClickHouse's own syntax tree: one read-only statement over `tonglu`'s tables.

ClickHouse parses; this module only judges. The backend first has the statement formatted by
`formatQuerySingleLine` (ClickHouse's parser, handed the text as hex so nothing can be injected;
it refuses several statements), then `EXPLAIN AST` of that canonical text. The canonical text is
what runs, so the tree judged here is the tree executed. The tree is read from EXPLAIN AST's
indented dump with every `(children N)` count checked. Identifiers are printed unescaped in the
dump, so quoted identifiers with anything but letters, digits and `_` are refused before EXPLAIN
runs (a newline in one could otherwise fake lines of the dump).

This is the first of two locks: the query then runs on a connection with `readonly=1` and limits
set when it was opened (chdb), or as a read-only user with grants on `tonglu` only (a server).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# Generators of numbers read nothing and help with calendars and gaps (`today() - number`).
# generateRandom, values, null, format and the rest have no analytic use; only these pass.
ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries"})
# Scalar functions that read outside the query's tables (files, dictionaries, Join tables, other
# databases' metadata) or tell about the host and server.
DENIED_FUNCTIONS = frozenset({
    "file", "joinget", "joingetornull", "hascolumnintable", "getsetting", "getsettingordefault",
    "getmergetreesetting", "getserversetting", "getmacro", "getserverport", "tcpport", "getoskernelversion",
    "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "filesystemfree", "catboostevaluate",
    "modelevaluate", "globalvariable", "serveruuid", "getclienthttpheader", "addresstoline",
    "addresstolinewithinlines", "addresstosymbol", "demangle", "fuzzquery", "url", "s3", "input", "remote",
    "executable", "view", "merge", "cluster", "mysql", "postgresql", "jdbc", "odbc",
})
_IN_FUNCTIONS = frozenset({"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin",
                           "globalnotnullin"})
_SELECT_ROOTS = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery"})
_NESTED_QUERY_KINDS = _SELECT_ROOTS | {"SelectQuery", "TablesInSelectQuery"}
# SelectWithUnionQuery's children after its ExpressionList: what each kind of node stands for.
_OUTPUT_CLAUSES = {"Literal": "INTO OUTFILE", "Identifier": "FORMAT", "Set": "SETTINGS"}

# Canonical text from ClickHouse's formatter: strings and identifiers quoted with backslash escapes.
_CANONICAL = re.compile(r"(?P<str>'(?:[^'\\]|\\.)*')|(?P<qid>`(?:[^`\\]|\\.)*`)|(?P<dq>\")|(?P<word>[^\W\d]\w*)"
                        r"|(?P<other>[^'`\"\w\s]+|\d\w*)|(?P<ws>\s+)", re.DOTALL)
_SHOW_TABLES = re.compile(r"SHOW TABLES(?: FROM (\w+))?(?: (NOT )?(I?LIKE) ('(?:[^'\\]|\\.)*'))?")
_CHILDREN = re.compile(r" \(children (\d+)\)$")


class UnsafeSQL(ValueError):
    """The statement is refused; the message (Chinese, then English) names what was refused."""


@dataclass(frozen=True)
class SqlLimits:
    """Limits every analyst query runs under (ClickHouse settings the analyst cannot change)."""

    timeout_s: float = 10.0
    max_result_rows: int = 100_000
    max_result_bytes: int = 100_000_000
    max_memory_bytes: int = 2_000_000_000

    @classmethod
    def from_env(cls) -> SqlLimits:
        """TONGLU_SQL_TIMEOUT (seconds), TONGLU_SQL_MAX_ROWS, TONGLU_SQL_MAX_BYTES, TONGLU_SQL_MAX_MEMORY."""
        env = os.environ.get
        return cls(
            timeout_s=float(env("TONGLU_SQL_TIMEOUT") or cls.timeout_s),
            max_result_rows=int(env("TONGLU_SQL_MAX_ROWS") or cls.max_result_rows),
            max_result_bytes=int(env("TONGLU_SQL_MAX_BYTES") or cls.max_result_bytes),
            max_memory_bytes=int(env("TONGLU_SQL_MAX_MEMORY") or cls.max_memory_bytes),
        )

    def settings(self) -> dict:
        """The ClickHouse settings that enforce these limits (an overflow fails the query, never truncates)."""
        return {
            "max_execution_time": self.timeout_s,
            "timeout_overflow_mode": "throw",
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
        }


@dataclass(frozen=True)
class Node:
    """One line of EXPLAIN AST: its kind (`Function`, `TableIdentifier`, ...), name, and children."""

    kind: str
    name: str
    children: tuple[Node, ...] = field(default=())


@dataclass(frozen=True)
class Vetted:
    """A statement that passed: `sql` to run on the analyst connection, or a ready answer."""

    sql: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple, ...] = ()


def refuse(zh: str, en: str, what: str = "") -> UnsafeSQL:
    """An UnsafeSQL reading '<zh> <en>: <what>'."""
    return UnsafeSQL(f"{zh} {en}" + (f": {what}" if what else ""))


def check_canonical(canonical: str) -> set[str]:
    """Refuse canonical text the dump could misread; return the names that may be CTEs (`x AS (`)."""
    words: list[str] = []
    for tok in _CANONICAL.finditer(canonical):
        kind, text = tok.lastgroup, tok.group()
        if kind == "qid" and not re.fullmatch(r"`\w+`", text):
            raise refuse("标识符只能含字母、数字和下划线", "quoted identifiers may hold only letters, digits and _",
                         text[:60])
        if kind == "dq":
            raise refuse("无法解析的语句", "unexpected double quote in the formatted statement")
        if kind == "other" and ";" in text:
            raise refuse("只允许一条语句", "only a single statement is allowed")
        if kind == "word" and text.upper() == "OUTFILE" and words and words[-1].upper() == "INTO":
            raise refuse("不允许 INTO OUTFILE", "INTO OUTFILE is not allowed")
        if kind != "ws":
            words.append(text.strip("`") if kind in ("qid", "word") else text)
    return {w for w, nxt, paren in zip(words, words[1:], words[2:], strict=False) if nxt.upper() == "AS"
            and paren.startswith("(")}


def parse_ast_dump(dump: str) -> Node:
    """The tree of an EXPLAIN AST dump; every `(children N)` must match the lines indented under it."""
    lines = [line for line in dump.split("\n") if line.strip()]
    if not lines:
        raise refuse("无法解析的语句", "empty syntax tree")
    pos = 0

    def node(depth: int) -> Node:
        nonlocal pos
        line = lines[pos]
        text = line.lstrip(" ")
        if len(line) - len(text) != depth:
            raise refuse("无法解析的语法树", "could not read the statement's syntax tree")
        pos += 1
        count = _CHILDREN.search(text)
        kind, _, rest = text.partition(" ")
        name = rest.split(" ", 1)[0] if kind in ("Function", "Identifier", "TableIdentifier") else ""
        children = []
        for _ in range(int(count.group(1)) if count else 0):
            if pos >= len(lines):
                raise refuse("无法解析的语法树", "could not read the statement's syntax tree")
            children.append(node(depth + 1))
        return Node(kind, name, tuple(children))

    root = node(0)
    if pos != len(lines):
        raise refuse("无法解析的语法树", "could not read the statement's syntax tree")
    return root


def vet(canonical: str, tree: Node, database: str, tables: frozenset[str], ctes: set[str]) -> Vetted:
    """Judge one parsed statement; returns what to run (or the answer), else raises UnsafeSQL."""
    if tree.kind in _SELECT_ROOTS:
        for clause in tree.children[1:]:
            raise refuse("不允许的子句", "clause not allowed", _OUTPUT_CLAUSES.get(clause.kind, clause.kind))
        _walk(tree, _Scope(database, tables, ctes))
        return Vetted(sql=canonical)
    if tree.kind == "DescribeQuery":
        for child in tree.children:
            _walk(child, _Scope(database, tables, ctes))
        return Vetted(sql=canonical)
    if tree.kind in ("ShowCreateTableQuery", "ShowCreateViewQuery"):
        names = [c.name for c in tree.children if c.kind == "Identifier"]
        _Scope(database, tables, set()).table(".".join(names))
        return Vetted(sql=canonical)
    if tree.kind == "ShowTables":
        return _show_tables(canonical, database, tables)
    raise refuse("只允许 SELECT、WITH、SHOW TABLES、SHOW CREATE TABLE、DESCRIBE",
                 "only SELECT, WITH, SHOW TABLES, SHOW CREATE TABLE and DESCRIBE are allowed", tree.kind)


@dataclass(frozen=True)
class _Scope:
    database: str
    tables: frozenset[str]
    ctes: set[str]

    def table(self, name: str) -> None:
        database, _, table = name.rpartition(".")
        if not database and table in self.ctes:
            return
        if database.lower() in ("system", "information_schema"):
            raise refuse("不允许读取系统表", "system tables are not allowed", name)
        if (database or self.database) != self.database or table not in self.tables:
            raise refuse("不允许的表", f"table not allowed (only {self.database}'s tables)", name)


def _walk(node: Node, scope: _Scope) -> None:
    kind = node.kind
    if kind == "Set":
        raise refuse("不允许 SETTINGS 子句", "a SETTINGS clause is not allowed")
    if kind.endswith("Query") and kind not in _NESTED_QUERY_KINDS or kind == "Explain":
        raise refuse("不允许的子语句", "statement not allowed inside a query", kind)
    if kind == "TableIdentifier":
        scope.table(node.name)
    elif kind == "TableExpression":
        for child in node.children:
            if child.kind == "Function":
                _table_function(child)
    elif kind == "Function":
        name = node.name.lower()
        if name in DENIED_FUNCTIONS or name.startswith("dict") or "." in name:
            raise refuse("不允许的函数", "function not allowed", node.name)
        args = node.children[0].children if node.children and node.children[0].kind == "ExpressionList" else ()
        if name in _IN_FUNCTIONS and len(args) == 2:
            if args[1].kind == "Identifier":
                scope.table(args[1].name)  # `x IN tonglu.orders` reads that table
            elif args[1].kind == "Function" and args[1].name.lower() not in ("tuple", "array"):
                _table_function(args[1])
    for child in node.children:
        _walk(child, scope)


def _table_function(node: Node) -> None:
    if node.name.lower() not in ALLOWED_TABLE_FUNCTIONS:
        raise refuse("不允许的表函数", "table function not allowed", node.name)


def _show_tables(canonical: str, database: str, tables: frozenset[str]) -> Vetted:
    m = _SHOW_TABLES.fullmatch(canonical.strip())
    if not m or (m.group(1) and m.group(1) != database):
        raise refuse("只允许 SHOW TABLES [LIKE ...]", f"only SHOW TABLES [FROM {database}] [LIKE ...] is allowed")
    names = sorted(tables)
    if m.group(4):
        pattern = re.sub(r"\\(.)", r"\1", m.group(4)[1:-1])
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        flags = re.IGNORECASE if m.group(3) == "ILIKE" else 0
        names = [n for n in names if bool(re.fullmatch(regex, n, flags | re.DOTALL)) != bool(m.group(2))]
    return Vetted(columns=("name",), rows=tuple((n,) for n in names))


def vet_sql(backend, sql: object, database: str, tables: frozenset[str]) -> Vetted:
    """Parse `sql` with ClickHouse through `backend` (blocking) and judge it; raises UnsafeSQL."""
    if not isinstance(sql, str) or not sql.strip():
        raise refuse("空语句", "empty statement")
    try:
        canonical = backend.format_sql(sql)
    except Exception as exc:  # noqa: BLE001 - ClickHouse's syntax error, reported back as the reason
        if "Multi-statements are not allowed" in str(exc):
            raise refuse("只允许一条语句", "only a single statement is allowed") from None
        raise refuse("语法错误", "syntax error", _first_line(exc).split(" In scope ")[0].rstrip(" :.")) from None
    ctes = check_canonical(canonical)
    try:
        tree = parse_ast_dump(backend.explain_ast(canonical))
    except UnsafeSQL:
        raise
    except Exception as exc:  # noqa: BLE001
        if "(READONLY)" in str(exc):  # EXPLAIN runs nothing: only a SETTINGS clause it applies can say this
            raise refuse("不允许 SETTINGS 子句", "a SETTINGS clause is not allowed") from None
        raise refuse("语法错误", "syntax error", _first_line(exc)) from None
    return vet(canonical, tree, database, tables, ctes)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


_FAILURES = {
    "TIMEOUT_EXCEEDED": ("查询超时", "query stopped at the time limit"),
    "TOO_MANY_ROWS_OR_BYTES": ("结果超过上限", "result larger than the limit; add LIMIT or aggregate"),
    "MEMORY_LIMIT_EXCEEDED": ("内存超过上限", "query needs more memory than the limit"),
    "QUERY_WAS_CANCELLED": ("查询已取消", "query was cancelled"),
    "READONLY": ("只读连接", "read-only connection"),
}


def failure_reason(exc: BaseException) -> str:
    """A one-line reason (Chinese, then English) for an analyst query ClickHouse failed or stopped."""
    text = _first_line(exc)
    for code, (zh, en) in _FAILURES.items():
        if f"({code})" in text:
            return f"{zh} {en}: {text}"
    return f"查询失败 query failed: {text}"
