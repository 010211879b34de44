"""The platform registry: folders found by their manifests, bad manifests refused with one line."""
import shutil
from pathlib import Path

import pytest

from connectors import platforms
from connectors.platforms.manifest import ManifestError, load_manifest
from infra.config import Settings, default_simulators

ROOT = Path(platforms.__file__).parent


def _copy(tmp_path: Path, code: str, source: str = "taobao", edit=None) -> Path:
    folder = tmp_path / code
    shutil.copytree(ROOT / source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        manifest = folder / "manifest.toml"
        manifest.write_text(edit(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def _without_alias_and_port(text: str) -> str:
    text = text.replace('[aliases.tmall]  # Tmall runs on the same TOP gateway\nzh = "天猫"\nen = "Tmall"\n', "")
    return text.replace("sim_port = 8081", "sim_port = 18081")


def test_the_shipped_folders_are_found_with_their_names():
    assert {"shopify", "taobao"} <= set(platforms.codes()) and platforms.codes() == sorted(platforms.codes())
    assert {"shopify", "taobao", "tmall"} <= set(platforms.names())
    assert platforms.get("tmall").code == "taobao"
    assert platforms.label("taobao") == "淘宝/天猫 Taobao/Tmall" and platforms.label("tmall") == "天猫 Tmall"
    assert platforms.rate_limit("shopify") == (2.0, 40.0)


def test_an_unknown_platform_is_one_line_naming_the_known_ones():
    with pytest.raises(platforms.UnknownPlatform) as refused:
        platforms.get("amazon")
    known = ", ".join(f"{code} ({p.manifest.names.zh})" for code, p in platforms.registry().items())
    assert "shopify (Shopify), taobao (淘宝/天猫)" in known
    assert str(refused.value) == f"unknown platform 'amazon'; known: {known}"


def test_a_copied_folder_is_discovered_under_its_own_code(tmp_path):
    _copy(tmp_path, "taobaocopy", edit=_without_alias_and_port)
    (tmp_path / "not_a_platform").mkdir()  # a folder without a manifest is not a platform
    found = platforms.discover([ROOT, tmp_path])
    assert list(found) == sorted([*platforms.codes(), "taobaocopy"])
    assert found["taobaocopy"].manifest.sim_port == 18081


@pytest.mark.parametrize("edit, reason", [
    (lambda t: t.replace('TRADE_FINISHED = "COMPLETED"', 'TRADE_FINISHED = "DONE"'),
     "statuses.TRADE_FINISHED.status: Input should be 'PENDING_PAYMENT', "),
    (lambda t: t.replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"'),
     "timezone: unknown time zone 'Asia/Beijing'"),
    (lambda t: t.replace("[rate]", "[rates]"), "rate: Field required"),
    (lambda t: t.replace("burst = 10.0", "burst = 10.0\nburts = 3"), "rate.burts: Extra inputs are not permitted"),
    (lambda t: t.replace('unverified = ["carriers", "rate"]', 'unverified = ["carrier"]'),
     "unverified names 'carrier', which is not a manifest key"),
    (lambda t: t.replace("push = false ", "push = true ").split("[push]")[0] + "\n[statuses]\nA = \"PAID\"\n",
     "capabilities.push is true but there is no [push] table"),
    (lambda t: t.replace("[names]", "[names"), "not valid TOML"),
    (lambda t: t.replace("[names]", 'amount_identity_exception = " "\n[names]'),
     "amount_identity_exception: String should match pattern"),
    (lambda t: t.replace("[names]", 'amount_identity_exception = """tax\nrefunds"""\n[names]'),
     "amount_identity_exception: String should match pattern"),
])
def test_a_bad_manifest_is_refused_with_a_one_line_reason(tmp_path, edit, reason):
    folder = _copy(tmp_path, "broken", edit=edit)
    with pytest.raises(ManifestError) as refused:
        load_manifest(folder / "manifest.toml")
    message = str(refused.value)
    assert "\n" not in message and message.startswith(str(folder / "manifest.toml")) and reason in message, message
    with pytest.raises(ManifestError):
        platforms.discover([tmp_path])


def test_a_documented_amount_identity_exception_is_kept(tmp_path):
    folder = _copy(tmp_path, "withtax", edit=lambda t: t.replace(
        "[names]", 'amount_identity_exception = "paid_total excludes the platform subsidy"\n[names]'))
    assert load_manifest(folder / "manifest.toml").amount_identity_exception == \
        "paid_total excludes the platform subsidy"
    assert platforms.manifest("taobao").amount_identity_exception is None


def test_two_folders_claiming_one_alias_or_port_are_refused(tmp_path):
    _copy(tmp_path, "taobaocopy")  # still says it is also tmall, on port 8081
    with pytest.raises(ManifestError, match="platform code 'tmall' is already taken by taobao"):
        platforms.discover([ROOT, tmp_path])
    (tmp_path / "taobaocopy" / "manifest.toml").write_text(
        (tmp_path / "taobaocopy" / "manifest.toml").read_text().replace("[aliases.tmall]", "[aliases.tmallcopy]"))
    with pytest.raises(ManifestError, match="sim_port 8081 is already taken by taobao"):
        platforms.discover([ROOT, tmp_path])


def test_hand_made_samples_must_be_in_the_folders_samples(tmp_path):
    _copy(tmp_path, "taobaocopy", edit=lambda t: _without_alias_and_port(t).replace(
        "trades_sold_increment_get.xml", "trades_sold_increment_got.xml"))
    with pytest.raises(ManifestError, match="hand_made_samples names 'trades_sold_increment_got.xml', which is "
                                            "not in samples/"):
        platforms.discover([tmp_path])
    assert "trades_sold_increment_get.xml" in platforms.manifest("taobao").hand_made_samples


def test_local_simulators_default_to_the_manifests_ports(monkeypatch):
    assert default_simulators() == {code: f"http://127.0.0.1:{p.manifest.sim_port}"
                                    for code, p in platforms.registry().items()}
    assert default_simulators()["shopify"] == "http://127.0.0.1:8082"
    assert default_simulators()["taobao"] == "http://127.0.0.1:8081"
    monkeypatch.delenv("TONGLU_SIMULATORS", raising=False)
    assert Settings.from_env().simulators == default_simulators()
    monkeypatch.setenv("TONGLU_SIMULATORS", "taobao=http://127.0.0.1:9999")
    assert Settings.from_env().simulators == {"taobao": "http://127.0.0.1:9999"}
    monkeypatch.setenv("TONGLU_SIMULATORS", "none")
    assert Settings.from_env().simulators == {}
