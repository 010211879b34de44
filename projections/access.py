"""Who may call which HTTP route: the roles, the one route table, and the pure decisions over them.

Roles are ordered: a viewer reads, an operator also acts on orders, an admin also runs SQL and
manages tokens. A route needs a minimal role, or none (`OPEN`: monitoring probes and the status
page's shell, which holds no data — the figures it shows come from viewer routes).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field


class Role(enum.IntEnum):
    """A token's role; a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """`viewer`, `operator` or `admin`; ValueError otherwise."""
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"unknown role {text!r}; one of viewer, operator, admin") from None


OPEN = None  # the route answers anyone: no token is asked for


@dataclass(frozen=True)
class RouteRule:
    """The role a route needs, and what its audit row may record of a request body: the values of
    `audit_fields` (known to hold no personal data), the text of `sql_field` in the `sql` column,
    and of any other field only its type and size."""

    role: Role | None
    audit_fields: tuple[str, ...] = ()
    sql_field: str | None = None


# (method, route template) -> rule. Every registered route must be here (a test walks the router).
ROUTES: dict[tuple[str, str], RouteRule] = {
    ("GET", "/healthz"): RouteRule(OPEN),
    ("GET", "/metrics"): RouteRule(OPEN),
    ("GET", "/"): RouteRule(OPEN),
    ("GET", "/api/openapi.json"): RouteRule(OPEN),
    ("GET", "/api/stats"): RouteRule(Role.VIEWER),
    ("GET", "/api/platforms"): RouteRule(Role.VIEWER),
    ("GET", "/api/orders"): RouteRule(Role.VIEWER),
    ("GET", "/api/orders/{order_id}"): RouteRule(Role.VIEWER),
    ("GET", "/api/anomalies"): RouteRule(Role.VIEWER),
    ("GET", "/api/alerts"): RouteRule(Role.VIEWER),
    ("GET", "/api/sms"): RouteRule(Role.VIEWER),
    ("GET", "/api/sms/stats"): RouteRule(Role.VIEWER),
    ("POST", "/api/sms/members"): RouteRule(Role.OPERATOR),
    ("POST", "/api/orders/{order_id}/release"): RouteRule(Role.OPERATOR),
    ("POST", "/api/orders/{order_id}/shipments"): RouteRule(Role.OPERATOR, ("carrier",)),
    ("POST", "/api/sql"): RouteRule(Role.ADMIN, sql_field="sql"),
    ("GET", "/api/tokens"): RouteRule(Role.ADMIN),
    ("POST", "/api/tokens"): RouteRule(Role.ADMIN, ("name", "role")),
    ("DELETE", "/api/tokens/{token_id}"): RouteRule(Role.ADMIN),
}
# Routes whose permission is fixed before their handler exists.
PLANNED: set[tuple[str, str]] = set()
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def rule_for(method: str, template: str) -> RouteRule | None:
    """The rule of a registered route (HEAD follows GET); None for a route missing from the table."""
    return ROUTES.get(("GET" if method == "HEAD" else method, template))


def audited(method: str, rule: RouteRule) -> bool:
    """Every write and every SQL query leaves an audit row (refused attempts included)."""
    return method not in READ_METHODS or rule.sql_field is not None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, name and role, or the anonymous loopback viewer (id '')."""

    token_id: str
    name: str
    role: Role

    @property
    def issued_by(self) -> str:
        """How commands name the person: the token's name and id (a name can be reused after a revoke)."""
        return f"{self.name}#{self.token_id}" if self.token_id else self.name


ANONYMOUS = Principal("", "anonymous", Role.VIEWER)


@dataclass(frozen=True)
class Denial:
    """A refused request: HTTP status, the WWW-Authenticate value and the JSON body."""

    status: int
    challenge: str
    body: dict = field(default_factory=dict)


_REALM = 'Bearer realm="tonglu"'


def unauthenticated(reason_zh: str, reason_en: str, error: str | None = "invalid_token") -> Denial:
    """401 with the RFC 6750 challenge (`error` omitted when no credentials were sent at all)."""
    challenge = _REALM if error is None else f'{_REALM}, error="{error}"'
    return Denial(401, challenge, {"error": f"未认证：{reason_zh} / unauthenticated: {reason_en}",
                                   "code": "unauthenticated"})


def forbidden(principal: Principal, needed: Role) -> Denial:
    """403: the token is valid but its role is too weak for the route."""
    return Denial(
        403,
        f'{_REALM}, error="insufficient_scope"',
        {
            "error": f"权限不足：需要 {needed.label} 角色，当前为 {principal.role.label} / forbidden: this needs "
            f"the {needed.label} role, the caller has {principal.role.label}",
            "code": "forbidden",
            "required_role": needed.label,
            "role": principal.role.label,
        },
    )


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when the header is absent;
    ValueError with the reason when it is malformed (another scheme, no token, spaces inside)."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise ValueError("the Authorization header must use the Bearer scheme")
    if not token or " " in token or len(token) > 200 or not token.isascii():
        raise ValueError("the Authorization header holds no well-formed bearer token")
    return token


def is_loopback(address: str | None) -> bool:
    """Whether `address` is 127.0.0.0/8 or ::1 (also as an IPv4-mapped IPv6 address)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def parse_networks(spec: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """'10.0.0.0/8, 127.0.0.1' -> networks; ValueError naming the bad entry."""
    networks = []
    for part in (spec or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"TONGLU_TRUSTED_PROXIES: not an address or network: {part.strip()!r}") from None
    return tuple(networks)


def _in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies) -> str:
    """Where a request came from: the peer address, unless the peer is a trusted proxy, in which case
    the right-most address of X-Forwarded-For that is not itself a trusted proxy (the left part of
    that header is whatever the client chose to send)."""
    address = peer or ""
    if not forwarded_for or not trusted_proxies or not _in(address, trusted_proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _in(hop, trusted_proxies):
            break
    return address


def anonymous_allowed(enabled: bool, peer: str | None, forwarded: bool) -> bool:
    """Token-less viewer access: only when switched on, from a loopback peer, and not relayed by a
    proxy (a request carrying forwarding headers may come from anywhere)."""
    return enabled and not forwarded and is_loopback(peer)
