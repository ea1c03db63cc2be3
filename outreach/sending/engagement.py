"""What recipients did after we wrote: replies, bounces, unsubscribes, link clicks, meetings and conversions.

Events come from the IMAP poller (:mod:`outreach.sending.replies`) or from ``outreach events ingest`` (a JSONL file
for teams whose inbox or CRM is elsewhere). Each is matched to the enrollment whose ``Message-ID`` it refers
to (or to the account), stored once (``external_id`` is unique, so re-polling or re-ingesting is harmless),
and hard bounces and unsubscribes go straight onto the suppression list. The scheduler reads these events in
the short transaction that hands each message to the transport, and :func:`record` first locks the
enrollments the event is about (:func:`outreach.sending.suppression.lock_enrollments`), so a reply recorded
before that moment stops the follow-up. Call :func:`record` inside :func:`outreach.db.transaction` and keep
that transaction short (one event, or a few): the ``events ingest`` command, the IMAP poller and webhooks do.

``outreach events ingest`` reads these mixed with expansion outcomes (:mod:`outreach.metrics.ingest`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from outreach.sending.suppression import lock_enrollments, normalize, suppress
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow

EventKind = Literal["reply", "auto_reply", "bounce", "soft_bounce", "unsubscribe", "click", "meeting", "conversion",
                    "complaint", "delivered"]
# Kinds that put the address on the suppression list, with the reason recorded (ESP webhooks send complaints).
SUPPRESSION_REASONS: dict[str, str] = {"bounce": "hard_bounce", "unsubscribe": "unsubscribe", "complaint": "complaint"}
# Kinds that end an enrollment, with the exit reason recorded.
EXIT_REASONS: dict[str, str] = {
    "reply": "replied",
    "bounce": "hard_bounce",
    "unsubscribe": "unsubscribed",
    "meeting": "meeting_booked",
    "conversion": "converted",
}


class MailEvent(BaseModel):
    """One event. Name the message (``message_id``, ours), the address or the account; the rest is found."""

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    occurred_at: datetime
    external_id: str | None = Field(default=None, description="The source's id (incoming Message-ID, CRM id).")
    message_id: str | None = Field(default=None, description="Our Message-ID this event refers to.")
    email: str | None = None
    account_id: str | None = None
    offer_id: str | None = Field(default=None, description="For conversions: the offer that was bought.")
    detail: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        if self.external_id:
            return self.external_id[:400]
        raw = json.dumps(self.model_dump(mode="json", exclude={"detail"}), sort_keys=True)
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


class RecordResult(BaseModel):
    created: bool
    kind: str
    enrollment_id: int | None = None
    account_id: str | None = None
    suppressed: bool = False


def _find_enrollment(session: Session, event: MailEvent) -> EnrollmentRow | None:
    ids = [m for m in [event.message_id, *event.detail.get("references", [])] if m]
    if ids:
        outbox = session.scalar(select(OutboxRow).where(OutboxRow.message_id.in_(ids)).limit(1))
        if outbox is not None:
            return session.get(EnrollmentRow, outbox.enrollment_id)
    if event.email:
        query = select(EnrollmentRow).where(EnrollmentRow.recipient == normalize(event.email))
        if event.account_id:
            query = query.where(EnrollmentRow.account_id == event.account_id)
        return session.scalar(query.order_by(EnrollmentRow.enrolled_at.desc()).limit(1))
    return None


def record(session: Session, event: MailEvent, now: datetime, *, source: str) -> RecordResult:
    """Store one event (once), link it to its enrollment and apply suppressions. Does not commit."""
    key = event.key()
    existing = session.scalar(select(MailEventRow).where(MailEventRow.external_id == key))
    if existing is not None:
        return RecordResult(created=False, kind=existing.kind, enrollment_id=existing.enrollment_id,
                            account_id=existing.account_id)
    enrollment = _find_enrollment(session, event)
    email = normalize(event.email) if event.email else (enrollment.recipient if enrollment else None)
    account_id = event.account_id or (enrollment.account_id if enrollment else None)
    if event.kind in EXIT_REASONS:  # one ordered lock of everything this event may stop
        lock_enrollments(session, email=email, enrollment_id=enrollment.id if enrollment else None,
                         account_id=account_id if event.kind in ("meeting", "conversion") else None)
    session.add(MailEventRow(
        external_id=key, kind=event.kind, account_id=account_id, email=email,
        enrollment_id=enrollment.id if enrollment else None, message_id=event.message_id,
        offer_id=event.offer_id, detail=event.detail, source=source, occurred_at=event.occurred_at,
        recorded_at=now,
    ))
    suppressed = False
    if event.kind in SUPPRESSION_REASONS and email:
        suppressed = suppress(session, email, SUPPRESSION_REASONS[event.kind], now, source=f"{source}:{key}")
    session.flush()
    return RecordResult(created=True, kind=event.kind, enrollment_id=enrollment.id if enrollment else None,
                        account_id=account_id, suppressed=suppressed)


def exit_event(session: Session, enrollment: EnrollmentRow) -> MailEventRow | None:
    """The first event since enrollment that ends it: a human reply, hard bounce or unsubscribe for this
    enrollment or address, or a meeting or conversion for the account (a conversion for another offer
    does not count)."""
    query = (
        select(MailEventRow)
        .where(
            MailEventRow.kind.in_(list(EXIT_REASONS)),
            MailEventRow.occurred_at >= enrollment.enrolled_at,
            or_(
                MailEventRow.enrollment_id == enrollment.id,
                MailEventRow.email == enrollment.recipient,
                (MailEventRow.account_id == enrollment.account_id)
                & MailEventRow.kind.in_(("meeting", "conversion")),
            ),
        )
        .order_by(MailEventRow.occurred_at, MailEventRow.id)
    )
    for row in session.scalars(query):
        if row.kind == "conversion" and row.offer_id and enrollment.offer_id and row.offer_id != enrollment.offer_id:
            continue
        return row
    return None


def clicked(session: Session, enrollment: EnrollmentRow) -> bool:
    return session.scalar(
        select(MailEventRow.id).where(MailEventRow.kind == "click", MailEventRow.enrollment_id == enrollment.id)
        .limit(1)
    ) is not None


def replied(session: Session, enrollment: EnrollmentRow) -> bool:
    return session.scalar(
        select(MailEventRow.id).where(MailEventRow.kind == "reply", MailEventRow.enrollment_id == enrollment.id)
        .limit(1)
    ) is not None
