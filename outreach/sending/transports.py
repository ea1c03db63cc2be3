"""Turning an outbox row into an RFC 5322 message and handing it to a transport (an .eml directory or SMTP).

Every message carries what deliverability and the law ask for: a ``Message-ID`` we store (replies are
matched by it and follow-ups thread on it), ``List-Unsubscribe`` with a mailto and an https one-click URI plus
``List-Unsubscribe-Post`` (RFC 8058), the company's postal address and a plain opt-out line (CAN-SPAM), and
both a text and an HTML part.

A transport says how a send failed (:class:`SendError`), because the scheduler does different things with
each: **retry** — certainly not sent and worth trying again (relay unreachable, a 4xx reply, a timeout
before DATA); **rejected** — certainly not sent and retrying will not help (a 5xx that is not about the
recipient); **bounce** — the recipient was refused permanently (5xx on RCPT or after DATA with a 5.1.x/5.2.x
status); **unknown** — the connection was lost after DATA, so the server may have the message. ``relay``
marks failures of the relay itself (connect, greeting, EHLO, TLS, login, 421), after which a worker stops
handing over messages for this pass instead of failing every one of them.

After a crash, transports also say whether a message was handed over: the outbox transport can answer
exactly (the file is there or not), so a crash between writing and recording is repaired without a duplicate;
SMTP cannot, so such a send is held for a person to check (exactly-once over plain SMTP is impossible).
"""

from __future__ import annotations

import contextlib
import html
import io
import logging
import os
import re
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from datetime import datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from pathlib import Path
from typing import Literal, Protocol

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
        """Hand the message over. Raises :class:`SendError` saying how it failed; any other exception is
        treated as an unknown outcome."""

    def delivered(self, key: str) -> bool | None:
        """After a crash: True if the message for ``key`` was handed over, False if not, None if unknowable."""


Failure = Literal["retry", "rejected", "bounce", "unknown"]


class SendError(OutreachError):
    """A send that did not certainly succeed, and how: ``retry`` (certainly not sent, try again later),
    ``rejected`` (certainly not sent, retrying will not help), ``bounce`` (the recipient was refused
    permanently) or ``unknown`` (the server may have it). ``relay`` is set when the relay itself failed."""

    def __init__(self, message: str, *, failure: Failure = "retry", relay: bool = False, code: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failure: Failure = failure
        self.relay = relay
        self.code = code


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


_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_Phase = Literal["connect", "hello", "envelope", "recipient", "data"]


def _bytes(text: bytes | str) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _reply(code: int, text: bytes | str) -> str:
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(raw.split())}"


def _about_recipient(code: int, text: bytes | str) -> bool:
    """Whether a 5xx reply is about the recipient's address or mailbox: by its enhanced status code (RFC 3463:
    5.1.x addressing, 5.2.x mailbox; 5.7.x policy such as "relaying denied" is not), else by the basic code
    (550, 551, 552, 553)."""
    match = _ENHANCED.match(_bytes(text))
    if match is not None:
        return match.group(2) in (b"1", b"2")
    return code in (550, 551, 552, 553)


class SmtpTransport:
    """Real SMTP with implicit TLS (``ssl``), STARTTLS or none (a local relay), and optional auth; one
    connection per message. Every outcome is classified (:class:`SendError`) by where the dialogue stopped:
    anything before DATA certainly did not deliver; a reply to DATA says exactly what happened; a connection
    lost or timed out after DATA leaves the outcome unknown."""

    name = "smtp"

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.context = ssl_context or ssl.create_default_context()

    @property
    def where(self) -> str:
        return f"SMTP {self.settings.smtp_host}:{self.settings.smtp_port}"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "ssl":
            return smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=self.context)
        return smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)

    def _hello(self, client: smtplib.SMTP) -> None:
        s = self.settings
        client.ehlo()
        if s.smtp_security == "starttls":
            client.starttls(context=self.context)
            client.ehlo()
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            client.login(s.smtp_user, password)

    def send(self, key: str, message: EmailMessage) -> None:
        senders = getaddresses([str(message.get("Sender") or message.get("From") or "")])
        recipients = getaddresses([str(message.get("To") or "")])
        sender = senders[0][1] if senders else ""
        recipient = recipients[0][1] if recipients else ""
        buffer = io.BytesIO()
        BytesGenerator(buffer, policy=message.policy.clone(linesep="\r\n")).flatten(message)
        data = buffer.getvalue()
        phase: _Phase = "connect"
        client: smtplib.SMTP | None = None
        try:
            client = self._connect()
            phase = "hello"
            self._hello(client)
            phase = "envelope"
            options: list[str] = []
            if not data.isascii() and client.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            if not (sender + recipient).isascii() and client.has_extn("smtputf8"):
                options.append("SMTPUTF8")
            code, text = client.mail(sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, sender)
            phase = "recipient"
            code, text = client.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, text)})
            phase = "data"
            code, text = client.data(data)  # raises SMTPDataError unless DATA got 354; returns the final reply
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            logger.info("smtp: %s accepted message %s", self.where, key)
        except smtplib.SMTPRecipientsRefused as refused:
            code, text = next(iter(refused.recipients.values()))
            raise self._refusal(phase, code, text) from None
        except smtplib.SMTPResponseException as error:
            raise self._refusal(phase, error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:  # lost connection, timeout, TLS, refused socket
            if client is not None:  # no QUIT on a connection that just failed: it would wait out the timeout
                client.close()
                client = None
            detail = f"{type(error).__name__}: {error}".rstrip(": ")
            if phase == "data":
                raise SendError(f"{self.where}: the connection was lost after DATA ({detail}); the server may "
                                "have accepted the message", failure="unknown") from None
            raise SendError(f"{self.where}: not sent, {self._stage(phase)} failed ({detail})", failure="retry",
                            relay=phase in ("connect", "hello")) from None
        finally:
            if client is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
                client.close()

    @staticmethod
    def _stage(phase: _Phase) -> str:
        return {"connect": "connecting", "hello": "EHLO/STARTTLS/login", "envelope": "MAIL FROM",
                "recipient": "RCPT TO", "data": "DATA"}[phase]

    def _refusal(self, phase: _Phase, code: int, text: bytes | str) -> SendError:
        """A server's explicit answer: 4xx is temporary, 5xx permanent (for the recipient, or for the message);
        421, or any refusal while connecting, greeting or logging in, is the relay's."""
        reply = _reply(code, text)
        stage = self._stage(phase)
        if phase in ("connect", "hello"):
            # Busy, or unusable as configured (a refused login, no STARTTLS): the next attempt may work.
            return SendError(f"{self.where}: not sent, {stage} got {reply}", failure="retry", relay=True, code=code,
                             hint=None if code < 500 else "check OUTREACH_SMTP_SECURITY, _USER and _PASSWORD")
        if 400 <= code < 500:
            return SendError(f"{self.where}: not sent, {stage} got {reply} (temporary)", failure="retry",
                             relay=code == 421, code=code)
        after_data = phase == "data" and _ENHANCED.match(_bytes(text)) is not None  # only a 5.x.y says whose
        if (phase == "recipient" or after_data) and _about_recipient(code, text):
            return SendError(f"{self.where}: the recipient was refused at {stage}: {reply}", failure="bounce",
                             code=code)
        return SendError(f"{self.where}: refused permanently at {stage}: {reply}", failure="rejected", code=code)

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
