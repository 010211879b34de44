"""API tokens in a JSON file, stored as SHA-256 hashes, shared by the CLI and the running API.

A token is `tl_` + 43 URL-safe characters from `secrets` (256 random bits). Only its SHA-256 is
kept: a slow password hash (bcrypt, argon2) protects low-entropy secrets from guessing, which a
256-bit random token does not need, and a fast hash lets every request be checked by one lookup.
The `tl_` prefix lets secret scanners recognise a leaked token.

Why a file and not ClickHouse: the CLI is another process than the API, and chdb lets only one
process open the data path. Every change rewrites the file atomically (temporary file, fsync,
rename) under an advisory lock, so concurrent `tonglu token` runs and the API never see half a
file; the API re-reads it when its identity (inode, size, mtime) changes, checked on each request,
so a revocation holds from the next request on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from projections.access import Principal, Role

PREFIX = "tl_"
NAME_PATTERN = re.compile(r"[\w.@-]{1,64}")  # \w includes CJK: a person's name may be the token's name


class TokenError(ValueError):
    """A token operation was refused (the message says why)."""


@dataclass(frozen=True)
class TokenRecord:
    """A stored token: never the token itself, only its hash and last four characters."""

    id: str
    name: str
    role: str
    hash: str
    last4: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict:
        """What listings show: everything but the hash."""
        return {k: v for k, v in asdict(self).items() if k != "hash"} | {"active": self.active}


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class TokenStore:
    """The tokens file: create, list and revoke (any process), and `principal` lookups for the API."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._by_hash: dict[str, TokenRecord] = {}

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> list[TokenRecord]:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, orjson.JSONDecodeError) as exc:
            raise TokenError(f"cannot read the tokens file {self.path}: {exc}") from None
        return [TokenRecord(**item) for item in doc.get("tokens", [])]

    def records(self) -> list[TokenRecord]:
        """Every token ever created here (revoked ones included), oldest first."""
        return self._load()

    def principal(self, token: str) -> Principal | None:
        """Who holds `token`, or None (unknown or revoked). Re-reads the file when it changed."""
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                records = self._load() if seen is not None else []
                self._by_hash = {r.hash: r for r in records if r.active}
                self._seen = seen
            record = self._by_hash.get(hash_token(token))
        return None if record is None else Principal(record.id, record.name, Role.parse(record.role))

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, records: list[TokenRecord]) -> None:
        body = orjson.dumps({"version": 1, "tokens": [asdict(r) for r in records]}, option=orjson.OPT_INDENT_2)
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def create(self, name: str, role: Role | str) -> tuple[str, TokenRecord]:
        """A new token for `name` (unique among active tokens): (the token, shown only now; its record)."""
        role = role if isinstance(role, Role) else Role.parse(role)
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise TokenError("name must be 1-64 letters, digits or . _ @ -")
        token = new_token()
        with self._locked():
            records = self._load()
            if any(r.active and r.name == name for r in records):
                raise TokenError(f"an active token named {name!r} exists; revoke it first")
            ids = {r.id for r in records}
            token_id = secrets.token_hex(4)
            while token_id in ids:
                token_id = secrets.token_hex(4)
            record = TokenRecord(token_id, name, role.label, hash_token(token), token[-4:], _now_iso())
            self._save([*records, record])
        return token, record

    def revoke(self, name_or_id: str) -> TokenRecord:
        """Revoke the token with this id, or else the active token with this name."""
        with self._locked():
            records = self._load()
            match = next((r for r in records if r.id == name_or_id and r.active), None) or next(
                (r for r in records if r.name == name_or_id and r.active), None
            )
            if match is None:
                raise TokenError(f"no active token with id or name {name_or_id!r}")
            revoked = TokenRecord(**{**asdict(match), "revoked_at": _now_iso()})
            self._save([revoked if r is match else r for r in records])
        return revoked


LOCAL_ADMIN = "local-admin"


def ensure_local_admin(store: TokenStore, token_file: Path) -> tuple[str, bool]:
    """The local stack's admin token, kept in `token_file` (mode 0600): the existing one if it is
    still active, else a new one (an older `local-admin` is revoked). Returns (token, created)."""
    return ensure_local_token(store, token_file, LOCAL_ADMIN, Role.ADMIN)


def ensure_local_token(store: TokenStore, token_file: Path, name: str, role: Role) -> tuple[str, bool]:
    """A token of the local stack kept in `token_file` (mode 0600): the existing one if it is still
    active, else a new one for `name` (an older active token of that name is revoked). (token, created)."""
    try:
        token = token_file.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        token = ""
    if token and store.principal(token) is not None:
        return token, False
    token_file.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(TokenError):
        store.revoke(name)
    token, _ = store.create(name, role)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    return token, True


def local_admin(tokens_path: Path, token_file: Path, http: str) -> str:
    """Ensure the local stack's admin token (see `ensure_local_admin`); the one line telling how to use it."""
    _, created = ensure_local_admin(TokenStore(tokens_path), token_file)
    return (f"{'新建' if created else '已有'}管理员令牌 {'new' if created else 'existing'} admin token: "
            f'curl -H "Authorization: Bearer $(cat {token_file})" {http}/api/tokens')
