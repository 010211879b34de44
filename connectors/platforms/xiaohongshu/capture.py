"""A capture: the answers one list page needs, kept together as one raw record.

`order.getOrderList` answers summaries only (no lines, amounts or receiver), so the client asks
`order.getOrderDetail` for every listed order and `order.getOrderReceiverInfo` once for the page. The
capture is a JSON object whose members are those answers, each byte for byte as received:

    {"order.getOrderDetail": [<answer>, …], "order.getOrderReceiverInfo": <answer>,
     "data.batchDesensitise": [<answer>, …]}

so a raw record holds only what the platform sent, and the mapping sees each order with its receiver.
The receiver's name, phone and address are ciphertexts; `data.batchDesensitise` (up to 100 values a
call) gives the platform's masks of them, when the app may call it.
The list answer itself is left out: a detail holds everything its summary says, and parsing the
summaries again would cost every page a third more (the page number travels in the record's `page`).
A page with nothing new (its orders captured earlier in the same window) is an empty detail list.
"""
from __future__ import annotations

LIST, DETAIL, RECEIVERS = "order.getOrderList", "order.getOrderDetail", "order.getOrderReceiverInfo"
MASKS = "data.batchDesensitise"


def capture(detail_answers: list[bytes], receiver_answer: bytes | None = None,
            mask_answers: list[bytes] | None = None) -> bytes:
    """The capture of one page: the answers spliced in unchanged (each must be a JSON value)."""
    members = [b'"' + DETAIL.encode() + b'":[' + b",".join(detail_answers) + b"]"]
    if receiver_answer is not None:
        members.append(b'"' + RECEIVERS.encode() + b'":' + receiver_answer)
    if mask_answers:
        members.append(b'"' + MASKS.encode() + b'":[' + b",".join(mask_answers) + b"]")
    return b"{" + b",".join(members) + b"}"
