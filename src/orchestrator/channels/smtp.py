"""E-mail over SMTP (``aiosmtplib``): the ``EmailSender`` of the outbox.

Host, port, TLS mode (``starttls``, implicit ``tls`` or ``none``) and credentials come from the
environment (``ORCHESTRATOR_SMTP_*``). With no host, messages go to the local SMTP server
(``channels/local_smtp.py``) that ``orchestrator run`` starts on the port two after the API's.

Every message is ``multipart/mixed``: a ``multipart/alternative`` of plain text, simple HTML and,
for appointments, the invitation as ``text/calendar; method=REQUEST|CANCEL`` (what Outlook,
Gmail and Apple Mail act on), plus the same invitation attached as ``invite.ics`` for clients that
only look at attachments. The recipient is passed to the server explicitly, never read back from
a header.
"""

from __future__ import annotations

import socket
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from orchestrator.deps import Email, EmailRefused
from orchestrator.settings import Settings

TLS_MODES = ("starttls", "tls", "none")


def smtp_address(settings: Settings) -> tuple[str, int]:
    """Where e-mail goes: the configured server, else the local one (the port two after the API's)."""
    if settings.smtp_host:
        return settings.smtp_host, settings.smtp_port
    return settings.host, settings.port + 2


def build_message(email: Email, sender: str) -> EmailMessage:
    """The MIME message of ``email`` (see the module doc)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to a robot
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    if email.calendar is not None:
        method = email.method or "PUBLISH"
        message.add_alternative(email.calendar, subtype="calendar", params={"method": method})
        message.add_attachment(
            email.calendar.encode(), maintype="application", subtype="ics", filename="invite.ics"
        )
    return message


class SmtpSender:
    """``EmailSender`` over one SMTP connection per message (``aiosmtplib.send``)."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_tls not in TLS_MODES:
            raise ValueError(f"ORCHESTRATOR_SMTP_TLS must be one of {', '.join(TLS_MODES)}")
        self.host, self.port = smtp_address(settings)
        local = not settings.smtp_host
        self.use_tls = settings.smtp_tls == "tls" and not local
        self.start_tls = settings.smtp_tls == "starttls" and not local
        self.username = settings.smtp_username or None
        self.password = settings.smtp_password or None
        self.sender = settings.smtp_from
        self.timeout = settings.smtp_timeout_seconds

    async def send(self, email: Email) -> str:
        message = build_message(email, self.sender)
        try:
            await aiosmtplib.send(
                message,
                sender=self.sender,
                recipients=[email.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as error:  # our configuration: retried until fixed
            raise EmailRefused(error.code, permanent=False, detail="authentication failed") from None
        # "from None": the server's exception may quote the address; no log may carry it
        except aiosmtplib.SMTPRecipientsRefused as refused:
            code = refused.recipients[0].code if refused.recipients else None
            raise EmailRefused(
                code, permanent=code is not None and code >= 500, detail="recipient refused"
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise EmailRefused(error.code, permanent=error.code >= 500, detail=error.message[:200]) from None
        except (aiosmtplib.SMTPException, OSError, socket.gaierror) as error:
            raise EmailRefused(None, permanent=False, detail=type(error).__name__) from None
        return email.message_id
