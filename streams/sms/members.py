"""Member care (pure): the members table from a CSV file, birthday greetings and points-change notices.

A members file has a header and one member per line: `member_id, shop_id`, then either `phone` or `platform` with
`token` (the platform's buyer token), and optionally `name`, `birthday` (`YYYY-MM-DD` or `MM-DD`), `points`,
`consent` (1/0, true/false, yes/no, 是/否). A bad line is refused with its line number and the rest imported. The
phone is kept sealed, hashed and masked, the name masked, the birthday as month and day.

Birthday greetings fire on the member's day (the shop's time zone), keyed by the year, so once a year; they are
marketing, so they wait for the window and need consent. A points notice fires when a member's points change
between two imports, keyed by that import.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connectors.sms.text import normalize_phone
from schemas.canonical import mask_name
from streams.sms.compose import HOUR_MS, build_request
from streams.sms.identity import mask_phone, message_key, phone_hash
from streams.sms.templates import SmsConfig

REQUIRED = ("member_id", "shop_id")
KNOWN = ("member_id", "shop_id", "phone", "platform", "token", "name", "birthday", "points", "consent")
_TRUE, _FALSE = {"1", "true", "yes", "y", "是"}, {"0", "false", "no", "n", "否", ""}
_PHONE = re.compile(r"^(?:1[3-9]\d{9}|\+[1-9]\d{6,14})$")
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    shop_id: str
    phone: str | None
    platform: str | None
    token: str | None
    name: str | None
    birthday: str | None  # MM-DD
    points: int
    consent: bool


def _birthday(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    for fmt, value in (("%Y-%m-%d", text), ("%Y-%m-%d", f"2000-{text}")):  # 2000: a leap year takes 02-29
        try:
            return datetime.strptime(value, fmt).strftime("%m-%d")
        except ValueError:
            continue
    raise ValueError(f"birthday {text!r} is not YYYY-MM-DD or MM-DD")


def _row(fields: Mapping[str, str]) -> MemberRow:
    get = {k: (fields.get(k) or "").strip() for k in KNOWN}
    for name in REQUIRED:
        if not get[name]:
            raise ValueError(f"{name} is empty")
        if not _ID.match(get[name]):
            raise ValueError(f"{name} {get[name]!r} has characters other than letters, digits and _.:@-")
    phone = normalize_phone(get["phone"]) if get["phone"] else None
    if phone is not None and not _PHONE.match(phone):
        raise ValueError("phone is not a mobile number (11 digits, or + and the country code)")
    if phone is None and not (get["platform"] and get["token"]):
        raise ValueError("needs a phone, or a platform and its token")
    if phone is not None and get["token"]:
        raise ValueError("give a phone or a platform token, not both")
    try:
        points = int(get["points"] or 0)
    except ValueError:
        raise ValueError(f"points {get['points']!r} is not a whole number") from None
    consent = get["consent"].lower()
    if consent not in _TRUE | _FALSE:
        raise ValueError(f"consent {get['consent']!r} is not 1/0, true/false, yes/no or 是/否")
    return MemberRow(get["member_id"], get["shop_id"], phone, get["platform"] or None, get["token"] or None,
                     get["name"] or None, _birthday(get["birthday"]), points, consent in _TRUE)


def parse_members_csv(text: str) -> tuple[list[MemberRow], list[str]]:
    """(good rows, one error per bad line: `line N: reason`). A file without the required header is one error."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        return [], [f"line 1: the header lacks {', '.join(missing)} (columns: {', '.join(KNOWN)})"]
    unknown = [h for h in header if h not in KNOWN]
    if unknown:
        return [], [f"line 1: unknown column(s) {', '.join(unknown)} (columns: {', '.join(KNOWN)})"]
    rows, errors = [], []
    for fields in reader:
        line = reader.line_num
        try:
            rows.append(_row({k.strip(): v for k, v in fields.items() if k is not None}))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
    return rows, errors


def parse_members_rows(items: list) -> tuple[list[MemberRow], list[str]]:
    """`parse_members_csv` for JSON rows (objects with the CSV's columns as keys): (good rows, one error per bad
    row: `row N: reason`, N counting from 1)."""
    rows, errors = [], []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(f"row {number}: not an object with the columns {', '.join(KNOWN)}")
            continue
        unknown = [k for k in item if k not in KNOWN]
        if unknown:
            errors.append(f"row {number}: unknown field(s) {', '.join(map(str, unknown))} (fields: {', '.join(KNOWN)})")
            continue
        fields = {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in item.items()}
        try:
            rows.append(_row(fields))
        except ValueError as exc:
            errors.append(f"row {number}: {exc}")
    return rows, errors


def member_record(row: MemberRow, now_ms: int, hash_key: bytes, seal: Callable[[str], dict] | None) -> dict:
    """The `SmsMember` of a row: the phone sealed by `seal(phone)`, hashed and masked; never kept in clear."""
    record = {"shop_id": row.shop_id, "member_id": row.member_id, "platform": row.platform, "token": row.token,
              "contact": None, "phone_hash": None, "to_masked": None, "name_masked": mask_name(row.name),
              "birthday": row.birthday, "points": row.points, "consent": row.consent, "updated_at": now_ms}
    if row.phone:
        if seal is None:
            raise ValueError("a member with a phone needs a key to seal it (TONGLU_RAW_KEYS)")
        record.update(contact=seal(row.phone), phone_hash=phone_hash(row.phone, hash_key),
                      to_masked=mask_phone(row.phone))
    return record


def member_subject(member: Mapping) -> str:
    """What a member's message keys are derived from (as an order id is for order messages)."""
    return f"member:{member['shop_id']}:{member['member_id']}"


def _requests(member: Mapping, config: SmsConfig, trigger: str, detail: str, variables: dict, now_ms: int,
              occurred_at: int) -> list[dict]:
    shop = member["shop_id"]
    rules = config.rules(shop)
    if now_ms - occurred_at > rules.trigger_max_age_hours * HOUR_MS:
        return []
    channel = "platform" if member.get("token") else "gateway" if member.get("contact") else "none"
    variables = {"shop_name": rules.shop_name or shop, "member_name": member.get("name_masked") or "会员",
                 **variables}
    return [build_request(
        key=message_key(member_subject(member), f"{trigger}:{detail}/{name}"), template_name=name,
        template=template, variables=variables, platform=member.get("platform") or "member", shop_id=shop,
        trigger=trigger, detail=detail, channel=channel, occurred_at=occurred_at, now_ms=now_ms,
        member_id=member["member_id"], token=member.get("token"), contact=member.get("contact"),
        phone_hash=member.get("phone_hash"), to_masked=member.get("to_masked"), consent=member.get("consent"),
        providers=[member["platform"]] if channel == "platform" else config.providers)
        for name, template in config.templates_for(shop, trigger)]


def points_requests(previous: Mapping | None, member: Mapping, config: SmsConfig, now_ms: int) -> list[dict]:
    """A points notice when the points changed since the member's previous version."""
    if previous is None or previous.get("points") == member.get("points"):
        return []
    delta = member["points"] - previous["points"]
    return _requests(member, config, "PointsChanged", str(member["updated_at"]),
                     {"points": f"{delta:+d}", "points_balance": str(member["points"])}, now_ms,
                     member["updated_at"])


def birthday_due(member: Mapping, now_ms: int, timezone: str) -> int | None:
    """The year whose greeting is due now (the member's day in the shop's zone; 02-29 on 02-28 in other years)."""
    if not member.get("birthday"):
        return None
    today = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(timezone)).date()
    month, day = map(int, member["birthday"].split("-"))
    if (month, day) == (2, 29) and not _leap(today.year):
        day = 28
    return today.year if (today.month, today.day) == (month, day) else None


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_requests(member: Mapping, config: SmsConfig, now_ms: int) -> list[dict]:
    """The greeting of the member's birthday today, if it is today (keyed by the year: once a year)."""
    year = birthday_due(member, now_ms, config.rules(member["shop_id"]).timezone)
    if year is None:
        return []
    return _requests(member, config, "Birthday", str(year), {"points": "0", "points_balance": str(
        member.get("points", 0))}, now_ms, now_ms)


def day_of(now_ms: int, timezone: str) -> date:
    return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(timezone)).date()
