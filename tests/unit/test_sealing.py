"""Sealed RawRecord bodies: envelope encryption, identity binding, key rotation, old plain records."""
import base64
import io
import os
import stat
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from fastavro.schema import parse_schema

from connectors import platforms
from connectors.platforms.manifest import load_manifest
from connectors.runtime.records import raw_record
from infra.raw_keys import LOCAL_KEYS_FILE, local_keys_env, opening_note, require_keys, rotated
from schemas import registry, sealing
from schemas.codec import AvroCodec
from schemas.sealing import EnvKeyProvider, KeyConfigError, Opener, Sealer, SealError, new_key_spec, open_body
from streams.normalize import Normalizer, RawIn

SHOPIFY = Path(__file__).parents[2] / "connectors" / "platforms" / "shopify" / "samples"
BODY = (SHOPIFY / "order_detail.json").read_bytes()
RAW = AvroCodec("RawRecord")
K0, K1 = new_key_spec("k0"), new_key_spec("k1")


def _sealed(provider_spec: str = K0, body: bytes = BODY, shop: str = "demo", **kw) -> bytes:
    return raw_record("shopify", shop, body, source="poll", sealer=Sealer(EnvKeyProvider(provider_spec), **kw))


def test_a_sealed_record_hides_the_body_and_opens_with_the_key():
    value = _sealed()
    assert b"mia.chen@example.com" in BODY and b"mia.chen@example.com" not in value
    assert b"+12125550143" not in value
    raw = RAW.decode(value)
    assert raw["seal"]["alg"] == "A256GCM" and raw["seal"]["key_id"] == "k0" and len(raw["seal"]["nonce"]) == 12
    assert open_body(raw, Opener(EnvKeyProvider(K0))) == BODY


def test_a_body_moved_onto_another_record_does_not_open():
    sealer, opener = Sealer(EnvKeyProvider(K0)), Opener(EnvKeyProvider(K0))
    a = RAW.decode(raw_record("shopify", "demo", BODY, source="poll", sealer=sealer))
    b = RAW.decode(raw_record("shopify", "demo", b'{"orders": []}', source="poll", sealer=sealer))
    assert a["seal"]["wrapped_key"] == b["seal"]["wrapped_key"]  # one data key for both
    for swapped in (dict(b, body=a["body"]), dict(b, body=a["body"], seal=a["seal"])):
        with pytest.raises(SealError, match="does not open"):
            opener.open(swapped)
    for other in (dict(a, shop_id="other-shop"), dict(a, platform="taobao"), dict(a, record_id="0" * 32)):
        with pytest.raises(SealError, match="does not open"):
            opener.open(other)
    tampered = dict(a, body=a["body"][:-1] + bytes([a["body"][-1] ^ 1]))
    with pytest.raises(SealError):
        opener.open(tampered)


def test_records_sealed_before_a_rotation_still_open_after_it():
    old = RAW.decode(_sealed(K0))
    after = EnvKeyProvider(f"{K1},{K0}")  # the new key first: it seals, both open
    new = RAW.decode(raw_record("shopify", "demo", BODY, source="poll", sealer=Sealer(after)))
    assert new["seal"]["key_id"] == "k1"
    opener = Opener(after)
    assert opener.open(old) == BODY and opener.open(new) == BODY
    with pytest.raises(SealError, match="'k0', which is not configured"):
        Opener(EnvKeyProvider(K1)).open(old)  # the old key retired too early: a clear reason
    with pytest.raises(SealError, match="not unwrap"):
        Opener(EnvKeyProvider("k0:" + K1.split(":")[1])).open(old)  # same id, another key
    with pytest.raises(SealError, match="no key is configured"):
        Opener(None).open(old)


def test_rotate_puts_a_new_key_first_and_keeps_the_old_ones():
    spec = rotated(K0, "k1")
    assert list(EnvKeyProvider(spec).keys) == ["k1", "k0"] and spec.endswith(K0)
    with pytest.raises(KeyConfigError):
        rotated(spec, "k0")
    assert list(EnvKeyProvider(rotated("", "first")).keys) == ["first"]


def test_the_data_key_changes_after_max_records_or_max_age():
    now = [0.0]
    sealer = Sealer(EnvKeyProvider(K0), max_records=3, max_age_s=60, clock=lambda: now[0])
    wrapped = [sealer.seal(b"x", str(n), "shopify", "s")[1]["wrapped_key"] for n in range(7)]
    assert sealer.data_keys == 3 and len(set(wrapped)) == 3 and wrapped[0] == wrapped[2] != wrapped[3]
    now[0] = 61.0
    assert sealer.seal(b"x", "8", "shopify", "s")[1]["wrapped_key"] != wrapped[-1] and sealer.data_keys == 4


@pytest.mark.parametrize("spec, reason", [
    ("k0", "expected kid:base64key"), ("k0:not base64!", "not base64"),
    (f"k0:{base64.b64encode(b'short').decode()}", "5 bytes"), (f"{K0},{K0}", "appears twice"),
    (" , ", "no key"), (f"bad id:{K0.split(':')[1]}", "expected kid"),
])
def test_bad_key_configuration_is_refused_with_its_reason(spec, reason):
    with pytest.raises(KeyConfigError, match=reason):
        EnvKeyProvider(spec)


class _RecordingKms:
    """Stands in for an external KMS behind the KeyProvider interface: counts its calls."""
    calls = 0

    def __init__(self):
        self.inner = EnvKeyProvider(K1)

    def wrap(self, data_key):
        _RecordingKms.calls += 1
        return self.inner.wrap(data_key)

    def unwrap(self, key_id, wrapped):
        _RecordingKms.calls += 1
        return self.inner.unwrap(key_id, wrapped)


def make_kms():
    return _RecordingKms()


def test_a_kms_plugs_in_by_module_and_factory_and_is_called_once_per_data_key():
    provider = sealing.provider_from_env({sealing.PROVIDER_ENV: f"{__name__}:make_kms", sealing.KEYS_ENV: K0})
    assert isinstance(provider, _RecordingKms)
    sealer, opener = Sealer(provider), Opener(provider)
    raws = [RAW.decode(raw_record("shopify", "demo", BODY, source="poll", sealer=sealer)) for _ in range(50)]
    assert all(opener.open(raw) == BODY for raw in raws)
    assert _RecordingKms.calls == 2  # one wrap, one unwrap for 50 records
    with pytest.raises(KeyConfigError, match="no_such_module"):
        sealing.provider_from_env({sealing.PROVIDER_ENV: "no_such_module:factory"})


def test_every_platform_today_seals_and_a_manifest_can_say_its_bodies_hold_no_personal_data(tmp_path):
    assert all(platforms.raw_body_personal(p) for p in platforms.names())
    assert platforms.raw_body_personal("not-a-platform")
    shipped = (platforms.get("taobao").folder / "manifest.toml").read_text(encoding="utf-8")
    assert "raw_body_personal = true" in shipped
    (tmp_path / "manifest.toml").write_text(shipped.replace("raw_body_personal = true", ""), encoding="utf-8")
    assert load_manifest(tmp_path / "manifest.toml").raw_body_personal  # default: sealed
    (tmp_path / "manifest.toml").write_text(shipped.replace("raw_body_personal = true", "raw_body_personal = false"),
                                            encoding="utf-8")
    assert not load_manifest(tmp_path / "manifest.toml").raw_body_personal


def _v1_record(body: bytes) -> bytes:
    """A RawRecord as written before bodies were sealed (schemas/history/tonglu.RawRecord.v1.avsc)."""
    v1 = registry.historical()["RawRecord"][0]
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(registry.plain(v1)), {
        "record_id": "a" * 32, "platform": "shopify", "shop_id": "demo", "external_id": None, "kind": "order",
        "source": "poll", "content_type": "json", "body": body, "fetched_at": 1_700_000_000_000,
        "api_version": None, "endpoint": None, "request_id": None, "page": None})
    return b"\xc3\x01" + registry.fingerprint_of(v1) + buf.getvalue()


def test_old_plain_records_still_decode_and_normalize():
    old = _v1_record(BODY)
    assert old[2:10] != RAW.header[2:10]  # the schema (and its fingerprint) changed
    raw = RAW.decode(old)
    assert raw["seal"] is None and open_body(raw) == BODY
    out = Normalizer().process([RawIn("raw.orders", 0, 0, b"shopify:demo", old)])
    assert not out.dead and out.orders == 1 and out.events


@pytest.fixture
def process_keys(monkeypatch):
    """This process's keys as a worker gets them from its environment."""
    def configure(spec):
        monkeypatch.setenv(sealing.KEYS_ENV, spec)
        sealing.default_sealer.cache_clear()
        sealing.default_opener.cache_clear()
    yield configure
    monkeypatch.delenv(sealing.KEYS_ENV, raising=False)
    sealing.default_sealer.cache_clear()
    sealing.default_opener.cache_clear()


def test_the_normalizer_opens_sealed_records_and_dead_letters_what_it_cannot_open(process_keys):
    process_keys(K0)
    sealed = raw_record("shopify", "demo", BODY, source="poll")  # sealed by the process's key
    assert RAW.decode(sealed)["seal"]["key_id"] == "k0"
    out = Normalizer().process([RawIn("raw.orders", 0, 0, b"shopify:demo", sealed)])
    assert not out.dead and out.events
    process_keys(K1)  # k0 is gone: the record cannot be opened, and is kept whole, still sealed
    out = Normalizer().process([RawIn("raw.orders", 0, 1, b"shopify:demo", sealed)])
    assert not out.events and len(out.dead) == 1
    letter = AvroCodec("DeadLetter").decode(out.dead[0][1])
    assert letter["stage"] == "decode" and "'k0', which is not configured" in letter["error"]
    assert letter["value"] == sealed and b"mia.chen" not in out.dead[0][1]


def test_the_local_stack_generates_a_key_once_and_production_refuses_to_start_without_one(tmp_path):
    env, note = local_keys_env(tmp_path, {})
    path = tmp_path / LOCAL_KEYS_FILE
    assert "generated a local key" in note and str(path) in note
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(EnvKeyProvider(env[sealing.KEYS_ENV]).keys)
    again, note = local_keys_env(tmp_path, {})
    assert again == env and "generated" not in note
    assert local_keys_env(tmp_path, {sealing.KEYS_ENV: K1})[0] == {}  # configured keys win
    with pytest.raises(SystemExit, match="no key to seal"):
        require_keys({})
    with pytest.raises(SystemExit, match="not base64"):
        require_keys({sealing.KEYS_ENV: "k0:???"})
    assert "in clear" in require_keys({sealing.PLAINTEXT_ENV: "1"})
    assert "k0" in require_keys({sealing.KEYS_ENV: K0})
    assert "k1, k0" in opening_note({sealing.KEYS_ENV: f"{K1},{K0}"})
    assert "dead letters" in opening_note({})
    with pytest.raises(SystemExit, match="appears twice"):
        opening_note({sealing.KEYS_ENV: f"{K0},{K0}"})
