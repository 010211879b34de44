"""The tokens file: hashed at rest, unique names, revocation seen by another store, atomic writes."""

from __future__ import annotations

import multiprocessing
import os
import stat

import orjson
import pytest

from projections.access import Role
from projections.tokens import TokenError, TokenStore, ensure_local_admin, hash_token


def test_create_stores_only_the_hash(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token, record = store.create("王芳", Role.OPERATOR)
    assert token.startswith("tl_") and len(token) == 46
    text = (tmp_path / "tokens.json").read_text()
    assert token not in text and token[3:] not in text
    assert record.hash == hash_token(token) and record.hash in text and record.last4 == token[-4:]
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    who = store.principal(token)
    assert (who.token_id, who.name, who.role) == (record.id, "王芳", Role.OPERATOR)
    assert store.principal(token + "x") is None and store.principal("tl_" + "A" * 43) is None
    assert "hash" not in record.public() and record.public()["active"] is True


def test_names_roles_and_revocation(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token, first = store.create("ops", "admin")
    with pytest.raises(TokenError, match="active token named 'ops'"):
        store.create("ops", Role.VIEWER)
    for bad in ("", "a b", "x" * 65, "semi;colon"):
        with pytest.raises(TokenError, match="name must be"):
            store.create(bad, Role.VIEWER)
    with pytest.raises(ValueError, match="unknown role"):
        store.create("x", "root")

    api_side = TokenStore(tmp_path / "tokens.json")  # the running API's own view of the file
    assert api_side.principal(token).role is Role.ADMIN
    revoked = store.revoke("ops")
    assert revoked.id == first.id and revoked.revoked_at is not None
    assert api_side.principal(token) is None  # seen on the next lookup, no restart
    with pytest.raises(TokenError, match="no active token"):
        store.revoke("ops")
    second_token, second = store.create("ops", Role.VIEWER)  # the name is free again
    assert second.id != first.id and api_side.principal(second_token).role is Role.VIEWER
    store.revoke(second.id)
    assert [r.active for r in store.records()] == [False, False]


def test_missing_file_means_no_tokens_and_a_corrupt_one_is_reported(tmp_path):
    store = TokenStore(tmp_path / "none" / "tokens.json")
    assert store.records() == [] and store.principal("tl_x") is None
    (tmp_path / "bad.json").write_text("{half")
    with pytest.raises(TokenError, match="cannot read the tokens file"):
        TokenStore(tmp_path / "bad.json").records()


def _create_many(path: str, prefix: str, n: int) -> None:
    store = TokenStore(path)
    for i in range(n):
        store.create(f"{prefix}{i}", Role.VIEWER)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "tokens.json")
    procs = [multiprocessing.get_context("spawn").Process(target=_create_many, args=(path, p, 15)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    names = {r["name"] for r in orjson.loads((tmp_path / "tokens.json").read_bytes())["tokens"]}
    assert names == {f"{p}{i}" for p in "ab" for i in range(15)}
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tokens-")]  # no temporary file left


def test_local_admin_is_kept_while_active_and_replaced_when_revoked(tmp_path):
    store, file = TokenStore(tmp_path / "tokens.json"), tmp_path / "admin.token"
    token, created = ensure_local_admin(store, file)
    assert created and file.read_text().strip() == token and store.principal(token).role is Role.ADMIN
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
    assert ensure_local_admin(store, file) == (token, False)
    store.revoke("local-admin")
    again, created = ensure_local_admin(store, file)
    assert created and again != token and store.principal(again).name == "local-admin"
    file.unlink()  # the file lost: the old local admin is revoked, a new one written
    third, created = ensure_local_admin(store, file)
    assert created and store.principal(again) is None and store.principal(third) is not None
