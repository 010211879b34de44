"""ERP signatures against the worked examples and recorded samples (erp_and_messaging.md §1, §2)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from connectors.erp.signing import qimen_sign, verify_webhook, webhook_signature

SAMPLES = Path(__file__).parents[2] / "connectors" / "erp" / "samples"


def test_webhook_signature_of_the_worked_example():
    body = b'{"event":"order.paid","order_id":"TL20240529000123"}'
    assert webhook_signature("whsec_tonglu_demo", 1717000000, body) == (
        "sha256=b289ebd24de03e81a9b926c658950e90d34636be6b232d8577ffcdc522dbf8a5")


def _sample_headers() -> dict[str, str]:
    lines = (SAMPLES / "outbound_webhook.headers.txt").read_text(encoding="utf-8").splitlines()[1:]
    return dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith("#"))


def test_the_recorded_webhook_verifies_and_a_changed_byte_does_not():
    body = (SAMPLES / "outbound_webhook.body.json").read_bytes()
    headers = _sample_headers()
    assert webhook_signature("whsec_tonglu_demo", headers["X-Tonglu-Timestamp"], body) == headers["X-Tonglu-Signature"]
    assert verify_webhook("whsec_tonglu_demo", "1717000000", headers["X-Tonglu-Signature"], body, 1717000100) is None
    forged = body.replace(b'"paid_total":3600', b'"paid_total":3601')
    assert verify_webhook("whsec_tonglu_demo", "1717000000", headers["X-Tonglu-Signature"], forged,
                          1717000100) == "signature does not match"
    assert verify_webhook("another-secret", "1717000000", headers["X-Tonglu-Signature"], body,
                          1717000100) == "signature does not match"


def test_stale_missing_or_malformed_headers_are_refused_with_the_reason():
    body = b"{}"
    good = webhook_signature("s", 1000, body)
    assert "more than 300s" in verify_webhook("s", "1000", good, body, 1301)
    assert verify_webhook("s", "1000", good, body, 1300) is None
    assert "X-Tonglu-Timestamp" in verify_webhook("s", None, good, body, 1000)
    assert "X-Tonglu-Timestamp" in verify_webhook("s", "12ab", good, body, 1000)
    assert "X-Tonglu-Signature" in verify_webhook("s", "1000", None, body, 1000)
    assert "X-Tonglu-Signature" in verify_webhook("s", "1000", good.replace("sha256=", "md5="), body, 1000)


def test_qimen_sign_of_the_worked_example():
    params = {"app_key": "23456789", "customerId": "TLWMS01", "format": "xml",
              "method": "taobao.qimen.deliveryorder.create", "sign_method": "md5",
              "timestamp": "2024-05-29 10:15:00", "v": "2.0"}
    body = b"<request><deliveryOrder><deliveryOrderCode>SO240529001</deliveryOrderCode></deliveryOrder></request>"
    assert qimen_sign("qimen_demo_secret", params, body) == "1484515A7D314A4E478BD0F16DFBAC29"
    assert qimen_sign("qimen_demo_secret", {**params, "sign": "whatever"}, body) == "1484515A7D314A4E478BD0F16DFBAC29"


def test_qimen_sign_of_the_recorded_request():
    first = (SAMPLES / "qimen_deliveryorder_create_request.url.txt").read_text(encoding="utf-8").splitlines()[0]
    params = dict(parse_qsl(urlsplit(first.split(" ", 1)[1]).query))
    body = (SAMPLES / "qimen_deliveryorder_create_request.xml").read_bytes()
    assert re.fullmatch(r"[0-9A-F]{32}", params["sign"])
    assert qimen_sign("qimen_demo_secret", params, body) == params["sign"]


def test_the_readme_verification_snippet_accepts_the_documented_example_and_nothing_else():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", readme, re.DOTALL).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the documented code itself is under test
    genuine = namespace["genuine"]
    body = (SAMPLES / "webhook_order_paid.body.json").read_bytes()
    lines = (SAMPLES / "webhook_order_paid.headers.txt").read_text(encoding="utf-8").splitlines()[1:]
    headers = dict(line.split(": ", 1) for line in lines if not line.startswith("#"))
    forever = 10 ** 10
    assert genuine(b"whsec_tonglu_demo", headers, body, tolerance_s=forever)
    assert not genuine(b"another", headers, body, tolerance_s=forever)
    assert not genuine(b"whsec_tonglu_demo", headers, body + b" ", tolerance_s=forever)
    assert not genuine(b"whsec_tonglu_demo", headers, body)  # a 2024 timestamp is stale today
