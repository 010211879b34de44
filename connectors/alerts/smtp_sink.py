"""Local mail server (aiosmtpd) for the email alert channel; mails land in the simulators' `SimStore`."""
from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from connectors.alerts.sim_store import SimStore


class _Sink:
    """aiosmtpd handler: keeps every mail (service=email, robot = recipients) and plays planned faults."""

    def __init__(self, store: SimStore):
        self.store = store

    async def handle_DATA(self, server, session, envelope) -> str:
        fault = self.store.take_fault("email")
        if fault is not None and fault[0] == "down":
            return "421 4.3.2 Service not available"
        if fault is not None and fault[0] == "error_5xx":
            return "451 4.3.0 Temporary server error"
        mail = message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        body = mail.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        self.store.record("email", ",".join(envelope.rcpt_tos), text.rstrip("\n"), str(mail["Subject"] or ""),
                          sender=envelope.mail_from, recipients=list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def start_smtp_sink(host: str, port: int, store: SimStore | None = None) -> Controller:
    """Start an SMTP server on host:port (own thread); `controller.store` holds the mails; `.stop()` ends it.

    Share the store with `simulators.create_app(store=controller.store)` so `GET /_sim/messages?service=email`
    shows the mails.
    """
    store = store or SimStore()
    controller = Controller(_Sink(store), hostname=host, port=port, decode_data=False)
    controller.store = store
    controller.start()
    return controller
