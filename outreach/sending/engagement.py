"""What recipients did after we wrote: replies, bounces, unsubscribes, link clicks, meetings and conversions.

Events come from the IMAP poller (:mod:`outreach.sending.replies`) or from ``outreach events ingest`` (a JSONL file
for teams whose inbox or CRM is elsewhere). Each is matched to the enrollment whose ``Message-ID`` it refers
to (or to the account), stored once (``external_id`` is unique, so re-polling or re-ingesting is harmless),
and hard bounces and unsubscribes go straight onto the suppression list. The scheduler reads these events in
the transaction that claims a step, so a reply that arrives a second before a follow-up stops it.

The same file (and ``ingest``) also takes expansion outcomes — ``kind`` upgrade, seat_add, addon_purchase,
expansion, contraction, downgrade or churn — which go to the outcomes table (:mod:`outreach.metrics.outcomes`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.engine.data import json_lines
from outreach.errors import DataError
from outreach.metrics.outcomes import OutcomeEvent, is_outcome, record_outcome
from outreach.sending.suppression import normalize, suppress
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow

EventKind = Literal["reply", "auto_reply", "bounce", "soft_bounce", "unsubscribe", "click", "meeting", "conversion"]
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
    session.add(MailEventRow(
        external_id=key, kind=event.kind, account_id=account_id, email=email,
        enrollment_id=enrollment.id if enrollment else None, message_id=event.message_id,
        offer_id=event.offer_id, detail=event.detail, source=source, occurred_at=event.occurred_at,
        recorded_at=now,
    ))
    suppressed = False
    if event.kind in ("bounce", "unsubscribe") and email:
        reason = "hard_bounce" if event.kind == "bounce" else "unsubscribe"
        suppressed = suppress(session, email, reason, now, source=f"{source}:{key}")
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


class IngestReport(BaseModel):
    read: int = 0
    created: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: int = 0
    outcomes: int = 0

    def line(self) -> str:
        text = (f"{self.read} events read: {self.created} recorded, {self.duplicates} already known, "
                f"{self.unmatched} not matched to an enrollment, {self.suppressed} addresses suppressed")
        return text + (f", {self.outcomes} of them expansion outcomes" if self.outcomes else "")


def parse_events(path: Path) -> list[MailEvent | OutcomeEvent]:
    """Read a JSONL file of events (mail events and outcomes); a bad line stops with the file, line and field."""
    if not path.exists():
        raise DataError(path, "file not found")
    events: list[MailEvent | OutcomeEvent] = []
    for number, data in json_lines(path):
        try:
            event = OutcomeEvent.model_validate(data) if is_outcome(data) else MailEvent.model_validate(data)
            events.append(event)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise DataError(path, first["msg"], line=number, field=field) from None
    return events


def ingest(factory: sessionmaker[Session], events: Sequence[MailEvent | OutcomeEvent], clock: Callable[[], datetime], *,
           source: str) -> IngestReport:
    report = IngestReport()
    with db.transaction(factory) as session:
        for event in events:
            report.read += 1
            if isinstance(event, OutcomeEvent):
                created = record_outcome(session, event, clock(), source=source)
                report.created += created
                report.duplicates += not created
                report.outcomes += created
                continue
            result = record(session, event, clock(), source=source)
            if not result.created:
                report.duplicates += 1
                continue
            report.created += 1
            report.unmatched += result.enrollment_id is None and result.account_id is None
            report.suppressed += result.suppressed
    return report
