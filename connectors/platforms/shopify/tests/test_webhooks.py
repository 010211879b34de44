"""Shopify webhook HMAC: the fact-sheet worked example and the signed fixture."""

from pathlib import Path

from ..webhooks import sign_body, verify

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SECRET = "shpss_demo_0f3c9a"


def _headers(name: str) -> dict:
    lines = (SAMPLES / name).read_text().splitlines()[1:]
    pairs = (line.partition(":") for line in lines if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, _, v in pairs}


def test_worked_example():
    body = b'{"id":6120418803905,"name":"#1042","financial_status":"paid"}'
    assert sign_body(body, SECRET) == "sSAZYfnMUCa39uuS9Ct8hNvGM87FLbYoLirC7WgFEL0="
    assert verify(body, "sSAZYfnMUCa39uuS9Ct8hNvGM87FLbYoLirC7WgFEL0=", SECRET)


def test_fixture_body_and_headers():
    body = (SAMPLES / "webhook_orders_paid.body.json").read_bytes()
    header = _headers("webhook_orders_paid.headers.txt")["X-Shopify-Hmac-Sha256"]
    assert header == "G4w9/UqHxNa/45JcYspNXQ1Y/33JKHgGp3gx/erEEaY="
    assert sign_body(body, SECRET) == header
    assert verify(body, header, SECRET)


def test_rejects_tampering_and_missing_values():
    body = (SAMPLES / "webhook_orders_paid.body.json").read_bytes()
    header = sign_body(body, SECRET)
    assert not verify(body + b" ", header, SECRET)
    assert not verify(body.replace(b'"36.00"', b'"0.01"', 1), header, SECRET)
    assert not verify(body, header, "shpss_other")
    assert not verify(body, None, SECRET)
    assert not verify(body, "", SECRET)
    assert not verify(body, "not base64 at all é", SECRET)
