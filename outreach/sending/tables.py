"""The tables behind sequences and sending, as typed SQLAlchemy 2 models (migration 0004 creates them).

Why these shapes:

- ``sequence_enrollments`` is the unit the scheduler claims: one row per approved draft enrolled in a
  sequence, with the step it is on, when that step became due by the schedule (``step_due_at``, what the
  stale guard measures from) and when a worker should next look at it (``next_due_at``: also moved by
  retries). A worker claims a due step with a lease (``lease_token`` until ``lease_until``) in a short
  transaction; a crashed worker's claims simply expire. It keeps the approved text, so what goes out is
  exactly what a rep approved.
- ``outbox`` is the outbox pattern: a row is committed in state ``sending`` right before its one message is
  handed to a transport, and its ``idempotency_key`` (enrollment and step) is unique, so a step can never be
  sent twice; a row left ``sending`` after a crash (its lease over) is the one message in doubt. States:
  see :data:`OUTBOX_STATES` and docs/sequences.md.
- ``suppressions`` and ``unsubscribe_tokens`` make unsubscribes take effect everywhere at once; tokens are
  random (opaque, unguessable), never derived from the address.
- ``mail_events`` stores replies, bounces, meetings and conversions (from IMAP or ``events ingest``), deduped
  by ``external_id``; the scheduler reads them right before each send.

"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from outreach.schema import Base

# What an outbox row can be (docs/sequences.md, "The states of an outbox row", says what an operator does):
OUTBOX_STATES: dict[str, str] = {
    "sending": "handed to the transport right now; after a crash (lease over) the one message in doubt",
    "sent": "accepted by the transport",
    "retry": "certainly not sent (relay down, 4xx, timeout before DATA); retried automatically with backoff",
    "failed": "certainly not sent, and retrying will not help or the retries ran out; the enrollment is held",
    "unknown": "may or may not have been delivered (connection lost after DATA, crash mid-send); held",
    "bounced": "the recipient was refused permanently (5xx); suppressed, the enrollment exited",
    "open": "a task for the rep",
}
# States in which a message counts as (possibly) delivered: caps, the cooldown and "contacted" read these.
CONTACTED_STATES = ("sending", "sent", "unknown")
EnrollmentStatus = Literal["active", "waiting_review", "sending", "held", "exited", "completed"]
ENROLLMENT_STATUSES: tuple[EnrollmentStatus, ...] = get_args(EnrollmentStatus)


class EnrollmentRow(Base):
    """One account's run through one sequence, started from an approved draft."""

    __tablename__ = "sequence_enrollments"
    __table_args__ = (Index("ix_enrollments_due", "status", "next_due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[str] = mapped_column(String(200))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"), unique=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    motion: Mapped[str] = mapped_column(String(20))
    data_dir: Mapped[str | None] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    recipient_name: Mapped[str | None] = mapped_column(String(300))
    sender: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    friction_id: Mapped[str | None] = mapped_column(String(200))
    offer_id: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    # active | waiting_review | sending | held | completed | exited
    status: Mapped[str] = mapped_column(String(20), default="active")
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None]
    step_due_at: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    pending_draft_id: Mapped[int | None] = mapped_column(Integer)
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_message_id: Mapped[str | None] = mapped_column(String(300))
    thread_references: Mapped[list[Any]] = mapped_column(JSON, default=list)
    thread_subject: Mapped[str | None] = mapped_column(String(500))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    exit_reason: Mapped[str | None] = mapped_column(String(30))
    exit_detail: Mapped[str | None] = mapped_column(Text)
    exited_at: Mapped[datetime | None]
    enrolled_by: Mapped[str] = mapped_column(String(320))
    enrolled_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutboxRow(Base):
    """One step carried out for one enrollment: an email handed to a transport, or a task for the rep."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        Index("ix_outbox_account_sent", "account_id", "sent_at"),
        Index("ix_outbox_sender_sent", "sender", "sent_at"),
        Index("ix_outbox_sender_attempted", "sender", "attempted_at"),
        Index("ix_outbox_attempted", "attempted_at"),
        Index("ix_outbox_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("sequence_enrollments.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # email | task
    # one of OUTBOX_STATES
    state: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    draft_id: Mapped[int | None] = mapped_column(Integer)
    transport: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempted_at: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class SuppressionRow(Base):
    """An address we must never email again (unsubscribe, hard bounce, manual)."""

    __tablename__ = "suppressions"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(30))
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class UnsubscribeTokenRow(Base):
    """The opaque token in an email's unsubscribe links, naming one recipient and one list."""

    __tablename__ = "unsubscribe_tokens"
    __table_args__ = (UniqueConstraint("email", "list_id", name="uq_unsubscribe_tokens_email_list"),)

    token: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    list_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MailEventRow(Base):
    """Something the recipient did: reply, auto_reply, bounce, unsubscribe, click, meeting, conversion."""

    __tablename__ = "mail_events"
    __table_args__ = (Index("ix_mail_events_account", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(Integer, index=True)
    message_id: Mapped[str | None] = mapped_column(String(300))
    offer_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
