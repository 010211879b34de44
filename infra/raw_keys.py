"""Which keys seal raw.orders bodies in a process: the local stack's generated key, production's check."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from schemas.sealing import (
    KEYS_ENV,
    PLAINTEXT_ENV,
    PROVIDER_ENV,
    EnvKeyProvider,
    KeyConfigError,
    new_key_spec,
    plaintext_allowed,
    provider_from_env,
)

LOCAL_KEYS_FILE = "raw-keys"


def new_key_id() -> str:
    """A key id that says when the key was made, e.g. `k20250101T120000`."""
    return time.strftime("k%Y%m%dT%H%M%S", time.gmtime())


def rotated(spec: str, key_id: str | None = None) -> str:
    """`TONGLU_RAW_KEYS` with a fresh key first (it seals from now on) and every key of `spec` after it."""
    kept = list(EnvKeyProvider(spec).keys) if spec.strip() else []
    key_id = key_id or new_key_id()
    if key_id in kept:
        raise KeyConfigError(f"key id {key_id!r} is already in use")
    return ",".join([new_key_spec(key_id)] + [p.strip() for p in spec.split(",") if p.strip()])


def _configured(environ: Mapping[str, str]):
    try:
        return provider_from_env(environ)
    except KeyConfigError as exc:
        raise SystemExit(f"错误 error: {exc}") from None


def local_keys_env(data_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[dict, str]:
    """(environment for the local stack's processes, what to tell the operator).

    Configured keys (or a KMS provider, or `TONGLU_RAW_PLAINTEXT=1`) are used as they are; otherwise
    a key is generated once into `data_dir/raw-keys` (mode 0600) and reused while that file exists.
    """
    environ = os.environ if environ is None else environ
    provider = _configured(environ)
    if isinstance(provider, EnvKeyProvider):
        return {}, f"原始数据加密 raw.orders bodies sealed with key {provider.current!r} from {KEYS_ENV}"
    if provider is not None:
        return {}, f"原始数据加密 raw.orders bodies sealed through {environ[PROVIDER_ENV]}"
    if plaintext_allowed(environ):
        return {}, f"警告 warning: raw.orders bodies stay in clear ({PLAINTEXT_ENV}=1)"
    path = data_dir / LOCAL_KEYS_FILE
    if path.exists():
        spec = path.read_text(encoding="utf-8").strip()
        _configured({KEYS_ENV: spec})
        return {KEYS_ENV: spec}, f"原始数据加密 raw.orders bodies sealed with the local key in {path}"
    data_dir.mkdir(parents=True, exist_ok=True)
    spec = new_key_spec(new_key_id())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(spec + "\n")
    return {KEYS_ENV: spec}, (f"已生成本地密钥 generated a local key in {path}: raw.orders bodies are sealed with it "
                              f"(production: set {KEYS_ENV})")


def require_keys(environ: Mapping[str, str] | None = None) -> str:
    """For the connectors: a usable key, or an explicit choice of plain bodies; else SystemExit with the reason."""
    environ = os.environ if environ is None else environ
    provider = _configured(environ)
    if provider is None and not plaintext_allowed(environ):
        raise SystemExit(f"错误 error: 未配置原始数据密钥 no key to seal raw.orders bodies: set {KEYS_ENV} "
                         f"(`tonglu keys rotate` makes one) or {PROVIDER_ENV}, or {PLAINTEXT_ENV}=1 to keep them in clear")
    if provider is None:
        return f"警告 warning: raw.orders bodies stay in clear ({PLAINTEXT_ENV}=1)"
    current = provider.current if isinstance(provider, EnvKeyProvider) else environ.get(PROVIDER_ENV)
    return f"原始数据加密 raw.orders bodies sealed ({current})"


def opening_note(environ: Mapping[str, str] | None = None) -> str:
    """For the normalizer: which keys open sealed bodies (SystemExit on a bad configuration)."""
    environ = os.environ if environ is None else environ
    provider = _configured(environ)
    if provider is None:
        return (f"警告 warning: 未配置原始数据密钥 no {KEYS_ENV}: sealed raw.orders records go to the dead letters "
                f"(plain ones are normalized)")
    kids = ", ".join(provider.keys) if isinstance(provider, EnvKeyProvider) else environ.get(PROVIDER_ENV)
    return f"原始数据解密 opens raw.orders bodies sealed with {kids}"
