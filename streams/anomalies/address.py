"""Is a receiver's province/city/district a real combination? Country and postal-code checks elsewhere.

The Chinese administrative divisions come from the data files shipped with the pinned `jionlp`
package (`dictionary/china_location.zip`: province > city > county with official names, codes and
short aliases, current as of its release; `china_location_change.txt`: official renames and
mergers since 2002, so an address written with a pre-merger name like 下城区 still counts as real).
The files are read directly (locating the package without importing it: `import jionlp` loads an
NLP toolkit and prints a banner), once, into plain dicts; each check is then a few dict lookups.
"""
from __future__ import annotations

import importlib.util
import re
import zipfile
from functools import cache
from pathlib import Path

import phonenumbers

ANY = frozenset()  # a city whose "districts" are towns (东莞市, 仙桃市): any district is accepted
_MUNICIPAL_CITY_ALIASES = ("市辖区", "县", "市辖县", "郊县", "城区")
_DIRECT = ("省直辖行政区划", "省直辖县级行政区划", "自治区直辖县级行政区划")

# basic shapes; anything else with a postal code is not checked
POSTAL_PATTERNS = {
    "US": re.compile(r"\d{5}(-?\d{4})?"),
    "CN": re.compile(r"\d{6}"),
    "GB": re.compile(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"),
    "DE": re.compile(r"\d{5}"),
    "JP": re.compile(r"\d{3}-?\d{4}"),
    "CA": re.compile(r"[A-Z]\d[A-Z] ?\d[A-Z]\d"),
}
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


class DivisionDataError(RuntimeError):
    """The administrative-division data of the pinned library cannot be found or read."""


class Divisions:
    """Province -> city -> district names (full names and aliases) for O(1) combination checks."""

    def __init__(self):
        self.provinces: dict[str, str] = {}                 # name or alias -> canonical province
        self.cities: dict[str, dict[str, str]] = {}         # province -> city name/alias -> canonical
        self.districts: dict[tuple[str, str], set | frozenset] = {}

    def add(self, province: str, province_alias: str, city: str | None = None, city_aliases=(),
            district: str | None = None, district_aliases=()) -> None:
        """Record one (province, city, district) combination with its aliases."""
        self.provinces.setdefault(province, province)
        for alias in province_alias.split("/"):
            if alias:
                self.provinces.setdefault(alias, province)
        if city is None:
            return
        cities = self.cities.setdefault(province, {})
        for name in (city, *city_aliases):
            if name:
                cities.setdefault(name, city)
        names = self.districts.setdefault((province, city), set())
        if district is not None and names is not ANY:
            names.update(n for n in (district, *district_aliases) if n)

    def any_district(self, province: str, city: str) -> None:
        self.districts[(province, city)] = ANY

    def check(self, province: str | None, city: str | None, district: str | None) -> str | None:
        """None when the combination is real (or too incomplete to judge), else the first bad level."""
        if not province:
            return None
        canonical = self.provinces.get(province)
        if canonical is None:
            return "province"
        if not city:
            return None
        city_key = self.cities.get(canonical, {}).get(city)
        if city_key is None:
            return "city"
        names = self.districts.get((canonical, city_key), ANY)
        if not district or names is ANY or district in names:
            return None
        # a county upgraded to a district (梁平县 -> 梁平区) keeps its short name, which is an alias
        if len(district) > 2 and district[-1] in "县区市旗" and district[:-1] in names:
            return None
        return "district"


def _package_dir() -> Path:
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        raise DivisionDataError("the `jionlp` package (administrative divisions) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dictionary"


def _fields(line: str) -> list[str]:
    return [part.strip() for part in line.strip().split("\t")]


def _load_tree(div: Divisions, text: str) -> None:
    province = p_alias = city = None
    c_aliases: tuple = ()
    direct = False
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip("\t"))
        if depth > 2 or not line.strip():
            continue
        name, *rest = _fields(line)
        alias = rest[1] if len(rest) > 1 else ""
        if depth == 0:
            province, p_alias = name, alias
            div.add(province, p_alias)
        elif depth == 1:
            city, c_aliases, direct = name, tuple(alias.split("/")), name in _DIRECT
            if name == province or alias == p_alias:  # a municipality: 北京市 > 北京市 > 朝阳区
                c_aliases += (p_alias, *_MUNICIPAL_CITY_ALIASES)
            if not direct:
                div.add(province, p_alias, city, c_aliases)
        elif direct:  # 仙桃市 under 省直辖行政区划: a county-level city used as the city, towns below
            div.add(province, p_alias, name, (alias,))
            div.any_district(province, name)
        elif name.startswith("市直辖"):  # 东莞市: towns and streets directly under the city
            div.any_district(province, city)
        else:
            div.add(province, p_alias, city, c_aliases, name, (alias,))


def _load_changes(div: Divisions, text: str) -> None:
    """Old names stay valid: old city with old county, and the old county under the new city."""
    for line in text.splitlines():
        if "=>" not in line:
            continue
        old, new = line.split("=>", 1)
        old_f, new_f = _fields(old), _fields(new)
        if len(old_f) < 6 or len(new_f) < 2:
            continue
        province = div.provinces.get(new_f[0], new_f[0])
        old_city, old_city_alias = old_f[4], old_f[5]
        county, county_alias = (old_f[6], old_f[7]) if len(old_f) >= 8 else (None, "")
        if div.districts.get((province, old_city)) is not ANY:
            div.add(province, old_f[3], old_city, (old_city_alias,), county, (county_alias,))
        new_city = div.cities.get(province, {}).get(new_f[1])
        if county and new_city and div.districts.get((province, new_city)) is not ANY:
            div.add(province, old_f[3], new_city, (), county, (county_alias,))


@cache
def divisions() -> Divisions:
    """The division table, built once (about 0.1 s); raises DivisionDataError if the data is missing."""
    folder = _package_dir()
    div = Divisions()
    try:
        with zipfile.ZipFile(folder / "china_location.zip") as archive:
            _load_tree(div, archive.read("china_location.txt").decode("utf-8"))
        _load_changes(div, (folder / "china_location_change.txt").read_text(encoding="utf-8"))
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DivisionDataError(f"cannot read the jionlp division data in {folder}: {exc}") from None
    if len(div.provinces) < 34:
        raise DivisionDataError(f"the jionlp division data in {folder} looks incomplete")
    return div


def postal_ok(country: str, postal_code: str | None) -> bool:
    """False only for a postal code that does not have its country's shape (unknown shapes pass)."""
    pattern = POSTAL_PATTERNS.get(country)
    return postal_code is None or pattern is None or pattern.fullmatch(postal_code.strip().upper()) is not None


def address_problem(receiver: dict) -> str | None:
    """The first problem of a receiver's address, or None.

    Codes: `country` (not an ISO 3166-1 alpha-2 code), `postal_code`, `province`, `city`, `district`
    (not a real Chinese combination), `vague` (the mapping judged the street too vague).
    Missing parts are "unknown", not a problem.
    """
    country = receiver.get("country")
    if country is not None:
        country = country.upper()
        if country not in COUNTRIES:
            return "country"
        if not postal_ok(country, receiver.get("postal_code")):
            return "postal_code"
    if country == "CN":
        level = divisions().check(receiver.get("province"), receiver.get("city"), receiver.get("district"))
        if level is not None:
            return level
    if receiver.get("address_vague") is True:
        return "vague"
    return None
