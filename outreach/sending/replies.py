"""The IMAP poller behind ``outreach replies poll``: replies, auto-replies and bounces from a mailbox.

Each unseen message is classified and recorded once (its own ``Message-ID`` is the event's external id):

- a **DSN** (``multipart/report; report-type=delivery-status``, RFC 3464) becomes a bounce — hard when the
  ``Action`` is ``failed`` with a 5.x.x status (the address goes on the suppression list), soft otherwise;
  the original ``Message-ID`` comes from the returned headers;
- an **auto-reply** (``Auto-Submitted`` other than ``no``, ``X-Autoreply``, ``Precedence: bulk/auto_reply/
  junk/list``, an out-of-office subject) is recorded as ``auto_reply`` and never ends a sequence;
- an **opt-out** (the ``List-Unsubscribe`` mailto, subject ``unsubscribe <token>``, or a reply whose subject
  or first own line says unsubscribe/stop) is recorded as ``unsubscribe``: the sender goes on the suppression
  list, whatever thread it names (CAN-SPAM: honour it, no login);
- anything else that names one of our ``Message-ID``\\ s in ``In-Reply-To``/``References`` is a human reply,
  which ends the sequence at its next step.

Messages are marked ``\\Seen`` only after their event is committed, so a crash re-reads rather than loses.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.errors import ConfigError
from outreach.sending.engagement import MailEvent, record
from outreach.settings import Settings

logger = logging.getLogger(__name__)

OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[\s-]*reply|autoreply|out of (the )?office|abwesenheit|absence|away from|vacation|"
    r"automatische antwort|réponse automatique)", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# The mailto: in List-Unsubscribe sends "unsubscribe <token>"; the footer invites replying "unsubscribe".
UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(re:\s*)*unsubscribe\b\s*(?P<token>[A-Za-z0-9_-]{16,})?", re.IGNORECASE)
UNSUBSCRIBE_WORDS = {"unsubscribe", "unsubscribe me", "stop", "remove me", "opt out", "please unsubscribe me"}


class PollReport(BaseModel):
    read: int = 0
    replies: int = 0
    auto_replies: int = 0
    bounces: int = 0
    unsubscribes: int = 0
    unmatched: int = 0
    duplicates: int = 0

    def line(self) -> str:
        return (f"{self.read} messages read: {self.replies} replies, {self.auto_replies} auto-replies ignored, "
                f"{self.bounces} bounces, {self.unsubscribes} unsubscribes, {self.unmatched} not about our emails, {self.duplicates} already seen")


def is_auto_reply(message: Message) -> bool:
    auto = (message.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if (message.get("Precedence") or "").strip().lower() in ("bulk", "auto_reply", "junk", "list"):
        return True
    return bool(OUT_OF_OFFICE.match(str(message.get("Subject") or "")))


def wants_out(message: EmailMessage) -> tuple[bool, str | None]:
    """(is an opt-out request, the unsubscribe token if the subject carries one): the List-Unsubscribe mailto
    (subject ``unsubscribe <token>``) or a reply whose subject or first own line says unsubscribe/stop."""
    match = UNSUBSCRIBE_SUBJECT.match(str(message.get("Subject") or ""))
    if match is not None:
        return True, match.group("token")
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    for line in str(text).splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            break
        return line.lower().strip(" .!") in UNSUBSCRIBE_WORDS, None
    return False, None


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def _when(message: Message, fallback: datetime) -> datetime:
    try:
        parsed = parsedate_to_datetime(str(message.get("Date")))
    except (TypeError, ValueError):
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dsn(message: Message) -> tuple[str, str | None, str | None, str] | None:
    """(kind, recipient, original message id, status) for a delivery-status report, else None."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipient = status = action = None
    original = None
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            # The body is a series of header blocks: one per message, then one per recipient.
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            for block in blocks:
                if not isinstance(block, Message):
                    continue
                action = block.get("Action", action)
                status = block.get("Status", status)
                final = block.get("Final-Recipient") or block.get("Original-Recipient")
                if final:
                    recipient = str(final).partition(";")[2].strip() or recipient
        elif ctype in ("text/rfc822-headers", "message/rfc822"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found_ids = _ids(inner[0].get("Message-ID"))
                original = found_ids[0] if found_ids else None
            elif isinstance(inner, str):
                found = re.search(r"^Message-ID:\s*(<[^>]+>)", inner, re.IGNORECASE | re.MULTILINE)
                original = found.group(1) if found else None
    hard = (action or "").strip().lower() == "failed" and (status or "").strip().startswith("5")
    return ("bounce" if hard else "soft_bounce"), recipient, original, (status or "").strip()


def classify(raw: bytes, now: datetime) -> MailEvent | None:
    """The event a raw message stands for, or None when it is not about any email (no references)."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    own_ids = _ids(message.get("Message-ID"))
    own_id = own_ids[0] if own_ids else None
    when = _when(message, now)
    dsn = _dsn(message)
    if dsn is not None:
        kind, recipient, original, status = dsn
        return MailEvent(kind=kind, occurred_at=when, external_id=own_id, message_id=original,
                         email=recipient, detail={"status": status, "subject": str(message.get("Subject") or "")})
    refs = _ids(message.get("In-Reply-To")) + _ids(message.get("References"))
    sender = getaddresses([str(message.get("From") or "")])
    email = sender[0][1] if sender and sender[0][1] else None
    auto = is_auto_reply(message)
    opt_out, token = wants_out(message) if not auto else (False, None)
    if opt_out and email:
        detail: dict[str, object] = {"references": refs, "subject": str(message.get("Subject") or "")}
        if token:
            detail["token"] = token
        return MailEvent(kind="unsubscribe", occurred_at=when, external_id=own_id,
                         message_id=refs[0] if refs else None, email=email, detail=detail)
    if not refs:
        return None
    kind = "auto_reply" if auto else "reply"
    return MailEvent(kind=kind, occurred_at=when, external_id=own_id, message_id=refs[0], email=email,
                     detail={"references": refs, "subject": str(message.get("Subject") or "")})


def connect(settings: Settings) -> imaplib.IMAP4:
    if not settings.imap_user:
        raise ConfigError("OUTREACH_IMAP_USER is not set", hint="set OUTREACH_IMAP_HOST/PORT/USER/PASSWORD")
    context = ssl.create_default_context()
    client: imaplib.IMAP4
    where = f"IMAP {settings.imap_host}:{settings.imap_port} ({settings.imap_security})"
    try:
        if settings.imap_security == "ssl":
            client = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port, ssl_context=context)
        else:
            client = imaplib.IMAP4(settings.imap_host, settings.imap_port)
            if settings.imap_security == "starttls":
                client.starttls(ssl_context=context)
    except (OSError, imaplib.IMAP4.error) as error:
        raise ConfigError(f"{where} cannot be reached: {error}",
                          hint="check OUTREACH_IMAP_HOST, _PORT and _SECURITY") from None
    password = settings.imap_password.get_secret_value() if settings.imap_password else ""
    try:
        client.login(settings.imap_user, password)
    except imaplib.IMAP4.error as error:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
        raise ConfigError(f"{where} refused the login for {settings.imap_user}: {error}",
                          hint="check OUTREACH_IMAP_USER and OUTREACH_IMAP_PASSWORD") from None
    return client


def poll(settings: Settings, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> PollReport:
    """Read every unseen message in the folder, record its event, then mark it seen."""
    report = PollReport()
    client = connect(settings)
    try:
        status, _ = client.select(settings.imap_folder)
        if status != "OK":
            raise ConfigError(f"IMAP folder '{settings.imap_folder}' cannot be opened")
        _, data = client.uid("SEARCH", "UNSEEN")
        uids = data[0].split() if data and data[0] else []
        for uid in uids:
            _, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if not isinstance(raw, bytes):
                continue
            report.read += 1
            event = classify(raw, clock())
            if event is None:
                report.unmatched += 1
            else:
                with db.transaction(factory) as session:
                    result = record(session, event, clock(), source="imap")
                if not result.created:
                    report.duplicates += 1
                elif result.enrollment_id is None and event.kind in ("reply", "auto_reply"):
                    report.unmatched += 1
                elif event.kind == "reply":
                    report.replies += 1
                elif event.kind == "unsubscribe":
                    report.unsubscribes += 1
                elif event.kind == "auto_reply":
                    report.auto_replies += 1
                else:
                    report.bounces += 1
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
    logger.info("imap %s/%s: %s", settings.imap_host, settings.imap_folder, report.line())
    return report
