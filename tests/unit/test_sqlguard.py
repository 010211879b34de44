"""The pure parts of the analyst SQL guard: reading EXPLAIN AST dumps, canonical text, SHOW TABLES, limits."""

from __future__ import annotations

import pytest

from projections.clickhouse.ddl import ANALYST_TABLES
from projections.sqlguard import SqlLimits, UnsafeSQL, check_canonical, parse_ast_dump, vet

DUMP = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier tonglu.orders (alias o)
"""


def test_a_dump_is_read_into_its_tree():
    tree = parse_ast_dump(DUMP)
    table = tree.children[0].children[0].children[1].children[0].children[0].children[0]
    assert (table.kind, table.name) == ("TableIdentifier", "tonglu.orders")
    assert vet("SELECT * FROM tonglu.orders AS o", tree, "tonglu", ANALYST_TABLES, set()).sql


@pytest.mark.parametrize("dump", [
    DUMP + " TableIdentifier tonglu.orders\n",  # a line no `(children N)` accounts for
    DUMP.replace("(children 2)", "(children 3)"),  # a count the lines do not fill
    DUMP.replace("     TableExpression", "      TableExpression"),  # indented deeper than a child
    "",
])
def test_a_dump_whose_lines_and_counts_disagree_is_refused(dump):
    with pytest.raises(UnsafeSQL, match="syntax tree"):
        parse_ast_dump(dump)


def test_tables_outside_the_allowlist_are_refused():
    other = parse_ast_dump(DUMP.replace("tonglu.orders", "tonglu.order_events_in_abc"))
    with pytest.raises(UnsafeSQL, match="table not allowed .*: tonglu.order_events_in_abc"):
        vet("", other, "tonglu", ANALYST_TABLES, set())
    system = parse_ast_dump(DUMP.replace("tonglu.orders", "system.users"))
    with pytest.raises(UnsafeSQL, match="system tables are not allowed: system.users"):
        vet("", system, "tonglu", ANALYST_TABLES, set())
    cte = parse_ast_dump(DUMP.replace("tonglu.orders", "recent"))
    assert vet("", cte, "tonglu", ANALYST_TABLES, {"recent"}).sql == ""


def test_canonical_text_refuses_odd_identifiers_and_finds_cte_names():
    assert "recent" in check_canonical("WITH recent AS (SELECT 1) SELECT * FROM recent AS `订单`")
    for bad in ("SELECT `a\\nb`", "SELECT `tonglu.orders`", 'SELECT "x"', "SELECT 1 INTO OUTFILE 'f'"):
        with pytest.raises(UnsafeSQL):
            check_canonical(bad)
    assert check_canonical("SELECT 'x; INTO OUTFILE' AS s") == set()  # inside a string it is data


def test_show_tables_lists_the_allowlist_filtered_by_like():
    tree = parse_ast_dump("ShowTables\n")
    assert [r[0] for r in vet("SHOW TABLES", tree, "tonglu", ANALYST_TABLES, set()).rows] == sorted(ANALYST_TABLES)
    liked = vet("SHOW TABLES NOT ILIKE 'ORDER%'", tree, "tonglu", ANALYST_TABLES, set()).rows
    assert ("orders",) not in liked and ("alerts",) in liked
    with pytest.raises(UnsafeSQL, match="only SHOW TABLES"):
        vet("SHOW TABLES FROM system", tree, "tonglu", ANALYST_TABLES, set())


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TONGLU_SQL_TIMEOUT", "2.5")
    monkeypatch.setenv("TONGLU_SQL_MAX_ROWS", "7")
    settings = SqlLimits.from_env().settings()
    assert settings["max_execution_time"] == 2.5 and settings["max_result_rows"] == 7
    assert settings["result_overflow_mode"] == "throw" and SqlLimits().timeout_s == 10
