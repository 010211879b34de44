"""Blocking SMTP send used by `EmailChannel` (run in a worker thread)."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from connectors.alerts.message import AlertMessage


def build_mail(sender: str, recipients: list[str], message: AlertMessage) -> EmailMessage:
    """A UTF-8 plain-text mail: subject = title, body = the plain text of the alert."""
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="tonglu.local")
    mail["X-Tonglu-Severity"] = message.severity
    mail.set_content(message.text_plain, charset="utf-8")
    return mail


def send_mail(channel, message: AlertMessage):
    """Deliver one alert over SMTP; 4xx replies and network errors are retryable, 5xx permanent."""
    from connectors.alerts.channels import SendResult

    mail = build_mail(channel.sender, channel.recipients, message)
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username:
                smtp.login(channel.username, channel.password or "")
            refused = smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = {code for code, _ in exc.recipients.values()}
        return _by_code(SendResult, max(codes), f"all recipients refused: {sorted(exc.recipients)}")
    except smtplib.SMTPResponseException as exc:
        return _by_code(SendResult, exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}")
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        return SendResult.retry(f"{exc.__class__.__name__}: {exc}", "network")
    if refused:  # delivered to the others: count as sent, say who was missed
        missed = f"some recipients refused: {sorted(refused)}"
        return SendResult(True, error=missed, code="partial", status=250)
    return SendResult.success(250)


def _by_code(result_cls, code: int, error: str):
    if 400 <= code < 500:
        return result_cls.retry(error, f"smtp_{code}", None, code)
    return result_cls.permanent(error, f"smtp_{code}", code)
