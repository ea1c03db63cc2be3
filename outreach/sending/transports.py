"""Turning an outbox row into an RFC 5322 message and handing it to a transport (an .eml directory or SMTP).

Every message carries what deliverability and the law ask for: a ``Message-ID`` we store (replies are
matched by it and follow-ups thread on it), ``List-Unsubscribe`` with a mailto and an https one-click URI plus
``List-Unsubscribe-Post`` (RFC 8058), the company's postal address and a plain opt-out line (CAN-SPAM), and
both a text and an HTML part.

Transports report whether a message was *possibly* handed over: the outbox transport can answer exactly (the
file is there or not), so a crash between writing and committing is repaired without a duplicate; SMTP
cannot, so such a send is held for a person to check (exactly-once over plain SMTP is impossible).
"""

from __future__ import annotations

import html
import logging
import os
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from outreach.errors import OutreachError
from outreach.settings import Settings

logger = logging.getLogger(__name__)


class OutgoingEmail(BaseModel):
    """Everything needed to build one message; ``idempotency_key`` names the (enrollment, step)."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    message_id: str
    sender: str
    sender_name: str | None = None
    recipient: str
    recipient_name: str | None = None
    subject: str
    body: str
    date: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    unsubscribe_https: str
    unsubscribe_mailto: str
    postal_address: str
    company: str
    list_id: str


def new_message_id(sender: str) -> str:
    """A globally unique ``<…@domain>`` on the sender's domain (so threading works in every client)."""
    domain = sender.rpartition("@")[2] or "localhost"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


def footer_text(email: OutgoingEmail) -> str:
    return (
        f"\n\n--\n{email.company} · {email.postal_address}\n"
        f"You are receiving this because your team uses {email.company}. "
        f"To stop these emails, unsubscribe here: {email.unsubscribe_https} "
        "(or reply with \"unsubscribe\")."
    )


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The RFC 5322 message for an outgoing email: headers, text part and an HTML alternative."""
    message = EmailMessage()
    message["From"] = formataddr((email.sender_name or "", email.sender))
    message["To"] = formataddr((email.recipient_name or "", email.recipient))
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = email.message_id
    if email.in_reply_to:
        message["In-Reply-To"] = email.in_reply_to
    if email.references:
        message["References"] = " ".join(email.references)
    message["List-Unsubscribe"] = f"<{email.unsubscribe_mailto}>, <{email.unsubscribe_https}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = f"<{email.list_id}>"
    message["X-Outreach-Key"] = email.idempotency_key
    text = email.body.rstrip() + footer_text(email)
    message.set_content(text)
    paragraphs = "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in email.body.strip().split("\n\n")
    )
    footer = (
        f'<p style="color:#666;font-size:12px">{html.escape(email.company)} · {html.escape(email.postal_address)}'
        f"<br>You are receiving this because your team uses {html.escape(email.company)}. "
        f'<a href="{html.escape(email.unsubscribe_https, quote=True)}">Unsubscribe</a> '
        "(or reply with &quot;unsubscribe&quot;).</p>"
    )
    message.add_alternative(f"<!doctype html><html><body>{paragraphs}{footer}</body></html>", subtype="html")
    return message


class Transport(Protocol):
    name: str

    def send(self, key: str, message: EmailMessage) -> None:
        """Hand the message over. Raises :class:`SendError` when it certainly was not accepted."""

    def delivered(self, key: str) -> bool | None:
        """After a crash: True if the message for ``key`` was handed over, False if not, None if unknowable."""


class SendError(OutreachError):
    """The transport refused the message (it was not handed over), e.g. SMTP 5xx or connection refused."""


class OutboxTransport:
    """Writes each message as an ``.eml`` file: ``<key>--<random>.eml``, written to a temp name, fsynced and
    renamed, so a file either is complete or is not there. The random part means a double send would show
    up as two files instead of one silently overwriting the other."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _stem(key: str) -> str:
        return key.replace(":", "-").replace("/", "-")

    def send(self, key: str, message: EmailMessage) -> None:
        final = self.directory / f"{self._stem(key)}--{uuid.uuid4().hex[:8]}.eml"
        partial = final.with_suffix(".part")
        data = message.as_bytes()
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
        logger.info("outbox: wrote %s", final.name)

    def files(self, key: str) -> list[Path]:
        return sorted(self.directory.glob(f"{self._stem(key)}--*.eml"))

    def delivered(self, key: str) -> bool | None:
        return bool(self.files(key))


class SmtpTransport:
    """Real SMTP with implicit TLS (``ssl``), STARTTLS or none (a local relay), and optional auth."""

    name = "smtp"

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.context = ssl_context or ssl.create_default_context()

    def send(self, key: str, message: EmailMessage) -> None:
        s = self.settings
        try:
            client: smtplib.SMTP
            if s.smtp_security == "ssl":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds,
                                          context=self.context)
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
            with client:
                client.ehlo()
                if s.smtp_security == "starttls":
                    client.starttls(context=self.context)
                    client.ehlo()
                if s.smtp_user:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    client.login(s.smtp_user, password)
                refused = client.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError, ConnectionRefusedError,
                smtplib.SMTPConnectError) as error:
            raise SendError(f"SMTP {s.smtp_host}:{s.smtp_port} refused the message: {error}") from None
        if refused:
            raise SendError(f"SMTP refused recipients: {', '.join(refused)}")
        logger.info("smtp: %s:%s accepted message %s", s.smtp_host, s.smtp_port, key)

    def delivered(self, key: str) -> bool | None:
        return None


def transport_for(settings: Settings) -> Transport:
    if settings.mail_transport == "smtp":
        return SmtpTransport(settings)
    return OutboxTransport(outbox_dir(settings))


def outbox_dir(settings: Settings) -> Path:
    return settings.outbox_dir or settings.resolved_home() / "outbox"


def thread_subject(subject: str) -> str:
    """'Re: <subject>' once, however many follow-ups deep."""
    stripped = subject.strip()
    while stripped.lower().startswith("re:"):
        stripped = stripped[3:].strip()
    return f"Re: {stripped}"


def references_after(previous: Sequence[str], message_id: str | None) -> tuple[str, ...]:
    refs = [r for r in previous if r]
    if message_id and message_id not in refs:
        refs.append(message_id)
    return tuple(refs)
