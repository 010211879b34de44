"""Carriers by canonical code, and turning what a person or an ERP calls a carrier into a platform's code.

A shipment names its carrier as a canonical code (`ZTO`), a name (`中通快递`, `ZTO Express`) or a
platform's own code. Each platform folder lists the codes its ship API accepts in its manifest's
`[carriers]` table (code -> name); `platform_carrier` finds the one meant, or None. Pure data and
functions: the API, the ship-back worker and the simulators use the same answer.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Carrier:
    code: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.code, self.zh, self.en, *self.aliases)


CARRIERS: dict[str, Carrier] = {c.code: c for c in (
    Carrier("SF", "顺丰速运", "SF Express", ("顺丰", "顺丰快递")),
    Carrier("ZTO", "中通快递", "ZTO Express", ("中通",)),
    Carrier("YTO", "圆通速递", "YTO Express", ("圆通", "圆通快递")),
    Carrier("STO", "申通快递", "STO Express", ("申通",)),
    Carrier("YUNDA", "韵达快递", "Yunda Express", ("韵达", "韵达速递", "YD")),
    Carrier("EMS", "EMS", "China EMS", ("中国邮政速递物流", "邮政EMS", "China EMS (ePacket)")),
    Carrier("POSTB", "邮政快递包裹", "China Post", ("中国邮政", "邮政包裹")),
    Carrier("JD", "京东快递", "JD Logistics", ("京东", "京东物流")),
    Carrier("HTKY", "百世快递", "Best Express", ("百世", "百世汇通")),
    Carrier("DBKD", "德邦快递", "Deppon Express", ("德邦", "德邦物流")),
    Carrier("JTSD", "极兔速递", "J&T Express", ("极兔", "极兔快递")),
    Carrier("UPS", "UPS", "UPS", ("United Parcel Service",)),
    Carrier("USPS", "美国邮政", "USPS", ("United States Postal Service",)),
    Carrier("FEDEX", "联邦快递", "FedEx", ()),
    Carrier("DHL", "DHL", "DHL Express", ("敦豪",)),
)}


def _norm(text: str) -> str:
    return "".join(text.split()).casefold()


_BY_NAME: dict[str, str] = {_norm(name): c.code for c in CARRIERS.values() for name in c.names()}


def canonical_carrier(text: str) -> str | None:
    """The canonical code of a carrier named by its code or any of its names (case and spaces ignored)."""
    return _BY_NAME.get(_norm(text or ""))


def platform_carrier(carriers: dict[str, str], given: str) -> str | None:
    """The platform's carrier code meant by `given`, from the platform's `carriers` table (code -> name).

    `given` may be the platform's own code, a name the platform uses, a canonical code or any name of
    a canonical carrier. None when the platform lists no such carrier.
    """
    wanted = _norm(given or "")
    if not wanted:
        return None
    for code, name in carriers.items():
        if wanted in (_norm(code), _norm(name)):
            return code
    canonical = canonical_carrier(given)
    if canonical is None:
        return None
    for code, name in carriers.items():
        if canonical in (canonical_carrier(code), canonical_carrier(name)):
            return code
    return None


def describe_known(carriers: dict[str, str], limit: int = 12) -> str:
    """'SF 顺丰速运, ZTO 中通快递, …': the platform's carriers for an error message."""
    items = [code if _norm(code) == _norm(name) else f"{code} {name}" for code, name in carriers.items()]
    more = f", … ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
