"""A keyword-aware check that analysts' SQL is a single read-only statement.

This is the first of two locks: the query also runs on a read-only connection (chdb `mode=ro`)
or with the server's `readonly` setting, so a statement slipping past the check still cannot write.
"""

from __future__ import annotations

import re

ALLOWED_FIRST = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC"}
FORBIDDEN = {
    "INSERT",
    "ALTER",
    "DROP",
    "CREATE",
    "TRUNCATE",
    "DELETE",
    "UPDATE",
    "RENAME",
    "ATTACH",
    "DETACH",
    "OPTIMIZE",
    "GRANT",
    "REVOKE",
    "KILL",
    "SYSTEM",
    "SET",
    "USE",
    "EXCHANGE",
    "REPLACE",
    "UNDROP",
    "MOVE",
    "BACKUP",
    "RESTORE",
    "OUTFILE",
    "INFILE",
    "SETTINGS",
    "CHECK",
    "WATCH",
}
# Table functions that read or write outside the database.
FORBIDDEN_FUNCTIONS = {
    "file",
    "url",
    "urlcluster",
    "s3",
    "s3cluster",
    "gcs",
    "azureblobstorage",
    "hdfs",
    "remote",
    "remotesecure",
    "cluster",
    "clusterallreplicas",
    "mysql",
    "postgresql",
    "sqlite",
    "mongodb",
    "redis",
    "jdbc",
    "odbc",
    "executable",
    "input",
    "python",
    "iceberg",
    "deltalake",
    "hudi",
    "dictionary",
}
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<line>(?:--|\#)[^\n]*)|(?P<block>/\*.*?\*/)|(?P<str>'(?:[^'\\]|\\.|'')*')"""
    r"""|(?P<qid>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<semi>;)|(?P<other>.)""",
    re.DOTALL,
)


class UnsafeSQL(ValueError):
    """The statement is not a single read-only query (the message says why)."""


def check_readonly_sql(sql: str) -> str:
    """Return the statement without a trailing `;` if it is one read-only query, else raise UnsafeSQL."""
    if not isinstance(sql, str) or not sql.strip():
        raise UnsafeSQL("empty statement")
    words: list[tuple[str, int]] = []
    end = len(sql)
    tokens = list(_TOKEN.finditer(sql))
    for i, tok in enumerate(tokens):
        kind = tok.lastgroup
        if kind == "other" and tok.group() in "'\"`":
            raise UnsafeSQL("unterminated quote")
        if kind == "other" and sql.startswith("/*", tok.start()):
            raise UnsafeSQL("unterminated comment")
        if kind == "semi":
            rest = [t for t in tokens[i + 1 :] if t.lastgroup not in ("ws", "line", "block")]
            if rest:
                raise UnsafeSQL("only a single statement is allowed")
            end = tok.start()
            break
        if kind == "word":
            words.append((tok.group().upper(), i))
    if not words or words[0][0] not in ALLOWED_FIRST:
        raise UnsafeSQL(f"only {', '.join(sorted(ALLOWED_FIRST))} statements are allowed")
    for word, i in words:
        if word in FORBIDDEN:
            raise UnsafeSQL(f"keyword {word} is not allowed")
        if word.lower() in FORBIDDEN_FUNCTIONS and _next_is_paren(tokens, i):
            raise UnsafeSQL(f"table function {word.lower()}() is not allowed")
    return sql[:end].strip()


def _next_is_paren(tokens, i: int) -> bool:
    for tok in tokens[i + 1 :]:
        if tok.lastgroup in ("ws", "line", "block"):
            continue
        return tok.group() == "("
    return False
