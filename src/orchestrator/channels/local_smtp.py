"""A local SMTP server (``aiosmtpd``) for the demo and the tests: it takes every message, keeps
it in memory and, given a directory, writes each as a ``.eml`` file any mail client opens (an
invitation in it can be added to a calendar from there).

It is the outside world, not our data. Like a real server it can refuse a recipient
(``refused``: 550 at RCPT) or answer the next messages with given replies (``faults``, e.g.
``"451 4.3.0 try again later"``), and it runs on its own thread and event loop
(``aiosmtpd.controller.Controller``), so it answers while the caller's loop waits on it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


@dataclass
class LocalSmtp:
    """The handler: what was received, and how to misbehave."""

    maildir: Path | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (MAIL FROM, RCPT TO)
    faults: list[str] = field(default_factory=list)  # replies to the next DATA commands, in order
    refused: set[str] = field(default_factory=set)  # recipients answered 550 (no such mailbox)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._arrived:
            if self.faults:
                return self.faults.pop(0)
            message = BytesParser(policy=policy.default).parsebytes(envelope.content)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            number = len(self.messages)
            self._arrived.notify_all()
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            (self.maildir / f"{number:05d}.eml").write_bytes(envelope.content)
            log.info("local SMTP: message saved", extra={"file": f"{number:05d}.eml"})
        return "250 2.0.0 queued"

    def wait_for(self, to: str, count: int, timeout: float) -> list[EmailMessage]:
        """The messages to ``to`` once at least ``count`` have arrived (``TimeoutError`` after
        ``timeout`` seconds): for a caller in another thread or process than the sender."""

        def received() -> list[EmailMessage]:
            return [m for m in self.messages if m["To"] == to]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(received()) >= count, timeout):
                raise TimeoutError(f"{len(received())} of {count} messages arrived")
            return received()


def start_local_smtp(host: str, port: int, maildir: Path | None = None) -> tuple[Controller, LocalSmtp]:
    """Serve a :class:`LocalSmtp` on ``host:port`` (its own thread) until ``controller.stop()``."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every address at INFO
    handler = LocalSmtp(maildir=maildir)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller, handler
