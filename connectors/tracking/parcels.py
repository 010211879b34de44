"""The simulated carriers' parcels, pure: subscriptions, the steps of a parcel's life, what is pushed.

A parcel lives 揽收 → 在途 → 在途 → 派件 → 签收 (Kuaidi100 states 1, 0, 0, 5, 3), one step every
`pace` seconds (a demo shop's parcels move in seconds, everyone else's in hours), unless it is told
otherwise (`advance`: delivered, exception 疑难, returned 退回, refused 拒签). Each step makes the
parcel's full trace, newest step first, the next push to its callback. No I/O, no clock of its own:
the simulator's app passes `now` (epoch seconds).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

import orjson

from connectors.tracking import kuaidi100
from schemas.canonical import BEIJING

# (state code, Kuaidi100's word, what the step says): the ordinary life of a parcel
LIFE = (
    ("1", "揽收", "[{origin}]{carrier} 已揽收快件"),
    ("0", "在途", "[{origin}]快件已发车，下一站【{dest}转运中心】"),
    ("0", "在途", "[{dest}]快件到达【{dest}{station}营业点】"),
    ("5", "派件", "[{dest}]快件交给{courier}师傅，正在派送途中（联系电话：{phone}）"),
    ("3", "签收", "[{dest}]您的快件已签收，签收人：本人。如有疑问请电联快递员"),
)
# what `advance` may make of a parcel, and its step
TURNS = {
    "delivered": ("3", "签收", "[{dest}]您的快件已签收，签收人：本人。如有疑问请电联快递员"),
    "exception": ("2", "疑难", "[{dest}]快件异常：收件人电话无人接听，地址不详，待联系"),
    "returned": ("6", "退回", "[{dest}]快件已退回，退回原因：收件人拒收"),
    "refused": ("14", "拒签", "[{dest}]收件人拒签，快件将退回寄件人"),
}
_CITIES = ("杭州市", "上海市", "广州市", "深圳市", "北京市", "成都市", "武汉市", "南京市")
_SURNAMES = "王李张刘陈杨赵黄周吴"


@dataclass
class Parcel:
    number: str
    company: str
    callback: str
    salt: str
    pace: float  # seconds between steps
    due: float  # when the next step of its life happens
    origin: str
    dest: str
    courier: str
    phone: str
    steps: list[dict] = field(default_factory=list)  # newest first, as pushed
    state: str | None = None  # Kuaidi100 state code of the newest step
    stage: int = 0  # the next step of LIFE
    done: bool = False  # signed for, returned or refused: no more steps of its own
    acked: int = 0  # steps its callback has acknowledged (a push of fewer is due, e.g. after a restart)

    def push(self) -> dict:
        """The push body (before form encoding) of the parcel as it stands."""
        final = self.state == "3"
        return {"status": "shutdown" if final else "polling", "billstatus": "check" if final else "got",
                "message": "", "autoCheck": "0", "comOld": "", "comNew": "",
                "lastResult": {"message": "ok", "nu": self.number, "ischeck": "1" if final else "0",
                               "com": self.company, "status": "200", "condition": "F00", "state": self.state,
                               "data": list(self.steps)}}


FORMAT = 1  # of a saved file


class SubscriptionError(ValueError):
    """A refused subscription: `code` is Kuaidi100's returnCode."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _beijing(now: float) -> str:
    return datetime.fromtimestamp(now, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class Parcels:
    """Every subscribed parcel of the simulated service."""

    def __init__(self, key: str, demo: frozenset[tuple[str, str]] = frozenset(), demo_pace: float = 3.0,
                 pace: float = 4 * 3600.0, seed: int = 100):
        """`key`: the subscriber's authorisation key; `demo`: (platform, shop_id) pairs whose parcels move
        every `demo_pace` seconds (everyone else's every `pace`)."""
        self.key, self.demo, self.demo_pace, self.pace = key, demo, demo_pace, pace
        self.parcels: dict[str, Parcel] = {}
        self._rng = random.Random(seed)
        self.changes = 0  # counts changes, so a saver knows when there is something to save

    def subscribe(self, param: dict, now: float, order_shop: tuple[str, str] | None) -> Parcel:
        """Register a parcel from a subscription's `param`; SubscriptionError(returnCode) if refused."""
        if param.get("key") != self.key:
            raise SubscriptionError("600", "您不是合法的订阅者（即授权Key出错）")
        number, company = param.get("number"), param.get("company")
        parameters = param.get("parameters") if isinstance(param.get("parameters"), dict) else {}
        if not isinstance(number, str) or not 4 <= len(number) <= 40:
            raise SubscriptionError("700", "订阅方的订阅数据存在错误（单号为空或超长）")
        if company not in kuaidi100.COMPANIES:
            raise SubscriptionError("700", f"订阅方的订阅数据存在错误（不支持的快递公司 {company!r}）")
        if not str(parameters.get("callbackurl", "")).startswith(("http://", "https://")):
            raise SubscriptionError("700", "订阅方的订阅数据存在错误（错误的回调地址）")
        held = self.parcels.get(number)
        if held is not None and not held.done:
            raise SubscriptionError("501", "重复订阅")
        pace = self.demo_pace if order_shop in self.demo else self.pace
        rng = self._rng
        origin, dest = rng.sample(_CITIES, 2)
        parcel = Parcel(number, company, parameters["callbackurl"], str(parameters.get("salt") or ""), pace,
                        now + pace * rng.uniform(0.6, 1.0), origin, dest, rng.choice(_SURNAMES),
                        f"1{rng.randrange(3, 9)}{rng.randrange(10 ** 8, 10 ** 9)}")
        self.parcels[number] = parcel
        self.changes += 1
        return parcel

    def _step(self, parcel: Parcel, code: str, word: str, text: str, now: float) -> None:
        when = _beijing(now)
        context = text.format(origin=parcel.origin, dest=parcel.dest, carrier=kuaidi100.carrier_name(parcel.company),
                              courier=parcel.courier, phone=parcel.phone, station=parcel.courier + "家")
        parcel.steps.insert(0, {"time": when, "ftime": when, "context": context, "status": word,
                                "areaCode": "", "areaName": parcel.dest, "location": ""})
        parcel.state = code
        parcel.done = code in ("3", "6", "14")
        self.changes += 1

    def snapshot(self) -> bytes:
        """Every parcel (its steps so far, when its next one is due) and the random generator, as JSON."""
        return orjson.dumps({"format": FORMAT, "parcels": [asdict(p) for p in self.parcels.values()],
                             "rng": self._rng.getstate()})

    def restore(self, data: bytes) -> None:
        """Replace the parcels and the random state with a `snapshot` (unknown fields are ignored, so a file
        of a newer simulator loads; ValueError, KeyError or TypeError for a damaged one, changing nothing)."""
        saved = orjson.loads(data)
        known = {f.name for f in fields(Parcel)}
        restored = {}
        for row in saved["parcels"]:
            parcel = Parcel(**{k: v for k, v in row.items() if k in known})
            restored[parcel.number] = parcel
        version, internal, gauss = saved["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self.parcels = restored
        self.changes += 1

    def acknowledged(self, parcel: Parcel, steps: int) -> None:
        """The callback took a push of the parcel's first `steps` steps."""
        if steps > parcel.acked:
            parcel.acked = steps
            self.changes += 1

    def unacknowledged(self) -> list[Parcel]:
        """Parcels with steps their callback has not acknowledged (a restarted simulator pushes them)."""
        return [p for p in self.parcels.values() if len(p.steps) > p.acked]

    def tick(self, now: float) -> list[Parcel]:
        """Move every parcel whose next step is due; the parcels that have something new to push."""
        moved = []
        for parcel in self.parcels.values():
            if parcel.done or now < parcel.due:
                continue
            self._step(parcel, *LIFE[parcel.stage], now)
            parcel.stage += 1
            parcel.done = parcel.done or parcel.stage >= len(LIFE)
            parcel.due = now + parcel.pace * self._rng.uniform(0.7, 1.3)
            moved.append(parcel)
        return moved

    def advance(self, number: str, turn: str, now: float) -> Parcel:
        """Make a parcel `turn` now (delivered, exception, returned, refused); KeyError if unknown,
        ValueError for an unknown turn."""
        if turn not in TURNS:
            raise ValueError(f"state must be one of {', '.join(TURNS)}")
        parcel = self.parcels[number]
        self._step(parcel, *TURNS[turn], now)
        if turn == "exception":
            parcel.due = now + parcel.pace  # the carrier sorts it out and the parcel moves on
        return parcel

