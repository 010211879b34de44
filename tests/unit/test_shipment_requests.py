"""Ship-back requests (schemas/shipments.py): the shipment's identity and one-line reasons for bad bodies."""
import hashlib

import pytest

from schemas.codec import AvroCodec
from schemas.shipments import (
    ShipmentRequestError,
    checked_command,
    shipment_command,
    shipment_id,
    shipment_request,
)

ORDER = "taobao:tonglu-home:2841736650118523691"


def test_the_same_order_and_tracking_number_is_the_same_shipment():
    assert shipment_id(ORDER, "ZT7700001") == hashlib.blake2b(f"{ORDER}|ZT7700001".encode(),
                                                              digest_size=16).hexdigest()
    assert shipment_id(ORDER, "ZT7700001") != shipment_id(ORDER, "ZT7700002")
    assert shipment_id(ORDER, "ZT7700001") != shipment_id(ORDER + "0", "ZT7700001")


def test_a_good_body_becomes_a_command_avro_accepts():
    request = shipment_request({"carrier": " 中通快递 ", "tracking_no": "ZT7700001", "line_ids": ["1", "2"]})
    assert request == {"carrier": "中通快递", "tracking_no": "ZT7700001", "line_ids": ["1", "2"]}
    assert shipment_request({"carrier": "ZTO", "tracking_no": "1Z999AA10123456784"})["line_ids"] == []
    assert shipment_request({"carrier": "ZTO", "tracking_no": "SF-1402", "line_ids": None})["line_ids"] == []
    command = shipment_command(ORDER, request, "ops#abc", 1_717_000_000_000)
    assert command["shipment_id"] == shipment_id(ORDER, "ZT7700001") and command["issued_by"] == "ops#abc"
    codec = AvroCodec("ShipmentCommand")
    assert codec.decode(codec.encode(command)) == command


@pytest.mark.parametrize("body,reason", [
    (None, "body must be a JSON object"),
    (["ZTO"], "body must be a JSON object"),
    ({"tracking_no": "ZT7700001"}, '"carrier" must be'),
    ({"carrier": "", "tracking_no": "ZT7700001"}, '"carrier" must be'),
    ({"carrier": 7, "tracking_no": "ZT7700001"}, '"carrier" must be'),
    ({"carrier": "ZTO"}, '"tracking_no" must be'),
    ({"carrier": "ZTO", "tracking_no": "ZT 77"}, '"tracking_no" must be'),
    ({"carrier": "ZTO", "tracking_no": 7700001}, '"tracking_no" must be'),
    ({"carrier": "ZTO", "tracking_no": "x" * 41}, '"tracking_no" must be'),
    ({"carrier": "ZTO", "tracking_no": "ZT7700001", "line_ids": "1"}, '"line_ids" must be a list'),
    ({"carrier": "ZTO", "tracking_no": "ZT7700001", "line_ids": [1]}, '"line_ids" must be a list'),
    ({"carrier": "ZTO", "tracking_no": "ZT7700001", "line_ids": ["1", "1"]}, "names a line twice"),
    ({"carrier": "ZTO", "tracking_no": "ZT7700001", "line_ids": [str(i) for i in range(501)]}, "at most 500"),
    ({"carrier": "ZTO", "tracking_no": "ZT7700001", "by": "someone"}, '"by"/"issued_by" is not accepted'),
    ({"carrier": "ZTO", "tracking_number": "ZT7700001"}, "unknown field 'tracking_number'"),
])
def test_a_bad_body_is_refused_in_one_line(body, reason):
    with pytest.raises(ShipmentRequestError) as refused:
        shipment_request(body)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_a_command_from_kafka_is_checked_and_given_the_contract_id():
    command = {"shipment_id": "made-up-by-the-erp", "order_id": ORDER, "carrier": "ZTO", "tracking_no": "ZT7700001",
               "line_ids": [], "issued_by": "erp", "requested_at": 1}
    assert checked_command(command)["shipment_id"] == shipment_id(ORDER, "ZT7700001")
    with pytest.raises(ShipmentRequestError, match="is not {platform}:{shop_id}:{external_id}"):
        checked_command(dict(command, order_id="2841736650118523691"))
    with pytest.raises(ShipmentRequestError, match="tracking_no"):
        checked_command(dict(command, tracking_no=""))
