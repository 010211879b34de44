"""A capture: the answers one list page needs, kept together as one raw record.

`order.getOrderList` answers summaries only, so the order of each summary comes from its
`order.getOrderDetail` answer and its receiver from one `order.getOrderReceiverInfo` answer for the
page. The capture is a JSON object whose members are those answers, each byte for byte as received:

    {"order.getOrderList": <answer>, "order.getOrderDetail": [<answer>, …], "order.getOrderReceiverInfo": <answer>}

so a raw record still holds only what the platform sent, and the mapping sees an order together with
its receiver.
"""
from __future__ import annotations

LIST, DETAIL, RECEIVERS = "order.getOrderList", "order.getOrderDetail", "order.getOrderReceiverInfo"


def capture(list_answer: bytes | None, detail_answers: list[bytes], receiver_answer: bytes | None = None) -> bytes:
    """The capture of one page: the answers spliced in unchanged (each must be a JSON value)."""
    members = [] if list_answer is None else [b'"' + LIST.encode() + b'":' + list_answer]
    members.append(b'"' + DETAIL.encode() + b'":[' + b",".join(detail_answers) + b"]")
    if receiver_answer is not None:
        members.append(b'"' + RECEIVERS.encode() + b'":' + receiver_answer)
    return b"{" + b",".join(members) + b"}"
