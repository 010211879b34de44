"""The platform registry: every folder here with a `manifest.toml` is a platform, found at run time.

A folder's name is its platform code; its manifest (see `manifest.py` and README.md here) holds the
data (names, limits, status tables, simulator port, demo shops), and its modules the code: `mapping`,
`client`, `render`, `simulator` and, for a platform that pushes, `push`. Nothing outside a folder
names a platform. `TONGLU_PLATFORM_PATH` (directories separated by the OS path separator) adds
folders kept elsewhere: they join this package's search path, so they import exactly like the
folders shipped here.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from connectors.platforms.manifest import Manifest, ManifestError, load_manifest

__path__ += [p for p in os.environ.get("TONGLU_PLATFORM_PATH", "").split(os.pathsep)
             if p and p not in __path__]


class UnknownPlatform(ValueError):
    pass


def _label(names) -> str:
    return names.zh if names.zh == names.en else f"{names.zh} {names.en}"


@dataclass(frozen=True)
class Platform:
    """One discovered platform folder."""

    code: str
    folder: Path
    manifest: Manifest

    @property
    def package(self) -> str:
        return f"{__name__}.{self.code}"

    def label(self) -> str:
        """'淘宝/天猫 Taobao/Tmall': the Chinese name first, English beside it (once if they are one)."""
        return _label(self.manifest.names)


def discover(directories) -> dict[str, Platform]:
    """The platform folders in `directories` (the first of a code wins), checked: a bad manifest, a code
    or alias two folders claim, a simulator port two folders want, or a hand-made sample that is not in
    samples/ raises ManifestError."""
    found: dict[str, Platform] = {}
    for info in pkgutil.iter_modules([str(d) for d in directories]):
        folder = Path(info.module_finder.path) / info.name
        if not info.ispkg or not (folder / "manifest.toml").is_file() or info.name in found:
            continue
        found[info.name] = Platform(info.name, folder, load_manifest(folder / "manifest.toml"))
    owner: dict[str, str] = {}
    ports: dict[int, str] = {}
    for code, platform in sorted(found.items()):
        where = platform.folder / "manifest.toml"
        for name in platform.manifest.hand_made_samples:
            if not (platform.folder / "samples" / name).is_file():
                raise ManifestError(f"{where}: hand_made_samples names {name!r}, which is not in samples/")
        for name in (code, *platform.manifest.aliases):
            if name in owner:
                raise ManifestError(f"{where}: platform code {name!r} is already taken by {owner[name]}")
            owner[name] = code
        port = platform.manifest.sim_port
        if port is not None and port in ports:
            raise ManifestError(f"{where}: sim_port {port} is already taken by {ports[port]}")
        if port is not None:
            ports[port] = code
    return dict(sorted(found.items()))


@cache
def registry() -> dict[str, Platform]:
    """Every platform folder on this package's search path, by code (see `discover`)."""
    return discover(__path__)


@cache
def _aliases() -> dict[str, str]:
    return {alias: code for code, p in registry().items() for alias in p.manifest.aliases}


def codes() -> list[str]:
    """The platform codes (folder names), sorted."""
    return list(registry())


def names() -> list[str]:
    """Every code a record may carry: the platform codes and their aliases (tmall → taobao)."""
    return sorted([*registry(), *_aliases()])


def get(platform: str) -> Platform:
    """The platform of a code or alias; UnknownPlatform (one line, listing the known ones) otherwise."""
    code = _aliases().get(platform, platform)
    try:
        return registry()[code]
    except KeyError:
        known = ", ".join(f"{c} ({p.manifest.names.zh})" for c, p in registry().items())
        raise UnknownPlatform(f"unknown platform {platform!r}; known: {known}") from None


def manifest(platform: str) -> Manifest:
    return get(platform).manifest


def label(platform: str) -> str:
    """Display name of a code or alias, Chinese first: '天猫 Tmall', '淘宝/天猫 Taobao/Tmall'."""
    p = get(platform)
    alias = p.manifest.aliases.get(platform)
    return _label(alias) if alias else p.label()


def module(platform: str, part: str) -> ModuleType:
    """The `part` module (mapping, client, simulator, render, push) of a platform or alias."""
    return importlib.import_module(f"{get(platform).package}.{part}")


@cache
def _mapper(platform: str):
    return module(platform, "mapping").map_payload


def raw_body_personal(platform: str) -> bool:
    """Whether the platform's raw bodies may hold buyers' personal data, so raw.orders seals them: the
    manifest's `raw_body_personal` (default true); unknown platforms are sealed too."""
    try:
        return manifest(platform).raw_body_personal
    except UnknownPlatform:
        return True


def map_payload(platform: str, body: bytes, content_type: str, shop_id: str) -> list[dict]:
    """Canonical orders (version 0) in one raw platform payload; raises MappingError on bad input."""
    return _mapper(platform)(body, content_type, shop_id, platform=platform)


def client(creds, caller):
    """The API client of `creds.platform` for one shop (the folder's `client.Client`)."""
    instance = module(creds.platform, "client").Client(creds, caller)
    instance.platform = creds.platform  # records carry the code the shop was configured with (tmall)
    return instance


def rate_limit(platform: str) -> tuple[float, float]:
    """The platform's documented request budget per shop: (requests/s, burst)."""
    rate = manifest(platform).rate
    return rate.requests_per_second, rate.burst


def samples(platform: str) -> list[tuple[Path, Path]]:
    """(payload, expected output) of every recorded sample of a platform: each `samples/<name>.expected.json`
    beside its payload `samples/<name>` or `samples/<name>.json`, in name order."""
    folder = get(platform).folder / "samples"
    found = []
    for expected in sorted(folder.glob("*.expected.json")):
        stem = expected.name[: -len(".expected.json")]
        source = next((p for p in (folder / stem, folder / f"{stem}.json") if p.is_file()), None)
        if source is not None:
            found.append((source, expected))
    return found


def catalogue() -> list[dict]:
    """Every platform as plain data for the API and the docs: code, names, aliases, capabilities."""
    out = []
    for code, p in registry().items():
        m = p.manifest
        out.append({"code": code, "name_zh": m.names.zh, "name_en": m.names.en, "label": p.label(),
                    "aliases": {a: {"name_zh": v.zh, "name_en": v.en} for a, v in m.aliases.items()},
                    "capabilities": m.capabilities.model_dump(), "push": m.push.model_dump() if m.push else None,
                    "unverified": list(m.unverified)})
    return out


__all__ = ["Manifest", "ManifestError", "Platform", "UnknownPlatform", "catalogue", "client", "codes", "discover", "get",
           "label", "manifest", "map_payload", "module", "names", "rate_limit", "registry", "samples"]
