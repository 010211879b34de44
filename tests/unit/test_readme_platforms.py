"""The README's platform table is the registry's catalogue: a platform folder added or changed without
the table following fails here (the expected table is printed, ready to paste between the markers)."""
from pathlib import Path

from connectors import platforms

README = Path(__file__).parents[2] / "README.md"
BEGIN, END = "<!-- platform-table:begin (tests/unit/test_readme_platforms.py) -->", "<!-- platform-table:end -->"


def _yes(flag: bool) -> str:
    return "✓" if flag else "–"


def platform_table() -> str:
    """The table the manifests say: name (Chinese, English), code (and aliases), pull, push, ship-back,
    encrypted receivers."""
    rows = ["| 平台 platform | code | pull | push | ship-back | encrypted receivers |", "|---|---|---|---|---|---|"]
    for p in platforms.catalogue():
        aliases = "".join(f" (`{a}`)" for a in p["aliases"])
        c = p["capabilities"]
        rows.append(f"| {p['label']} | `{p['code']}`{aliases} | {_yes(c['pull'])} | {_yes(c['push'])} | "
                    f"{_yes(c['ship_back'])} | {_yes(c['encrypted_receivers'])} |")
    return "\n".join(rows)


def readme_table(text: str) -> str | None:
    """What the README holds between the markers (None without them)."""
    if BEGIN not in text or END not in text.split(BEGIN, 1)[1]:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_readme_lists_every_platform_as_its_manifest_says():
    table = platform_table()
    held = readme_table(README.read_text(encoding="utf-8"))
    assert held == table, f"README.md should hold, between\n{BEGIN}\nand\n{END}\nexactly:\n\n{table}\n"


def test_a_platform_missing_from_the_table_is_noticed():
    table = platform_table()
    rows = table.splitlines()
    assert len(rows) == 2 + len(platforms.codes())
    assert readme_table(f"x\n{BEGIN}\n" + "\n".join(rows[:-1]) + f"\n{END}\n") != table
    assert readme_table(f"{BEGIN}\n{table}\n{END}") == table and readme_table(table) is None
