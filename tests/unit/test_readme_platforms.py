"""The README's platform table is the registry's catalogue: a platform folder added or changed without
the table following fails here (the expected table is printed, ready to paste)."""
from pathlib import Path

from connectors import platforms

README = Path(__file__).parents[2] / "README.md"


def _yes(flag: bool) -> str:
    return "✓" if flag else "–"


def platform_table() -> str:
    rows = ["| code | platform | pull | push | ship-back | encrypted receivers |", "|---|---|---|---|---|---|"]
    for p in platforms.catalogue():
        aliases = "".join(f" (`{a}`)" for a in p["aliases"])
        c = p["capabilities"]
        rows.append(f"| `{p['code']}`{aliases} | {p['label']} | {_yes(c['pull'])} | "
                    f"{_yes(c['push'])} | {_yes(c['ship_back'])} | {_yes(c['encrypted_receivers'])} |")
    return "\n".join(rows)


def test_the_readme_lists_every_platform_as_its_manifest_says():
    table = platform_table()
    assert table in README.read_text(encoding="utf-8"), f"README.md should carry:\n{table}"
