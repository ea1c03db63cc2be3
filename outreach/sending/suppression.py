"""The suppression list and unsubscribe tokens: once someone opts out, nothing reaches them again.

The scheduler checks the list in the short transaction that hands a message to the transport, so an
unsubscribe recorded before that moment stops it, for every sequence and motion. Recording one first locks
the enrollments that could still write to the address (:func:`lock_enrollments`; on PostgreSQL a row lock the
hand-over also takes, on SQLite the write lock :func:`outreach.db.transaction` holds), so a recording and a
hand-over are never interleaved: either the hand-over sees the unsubscribe, or the message was handed over
before the unsubscribe was recorded. Unsubscribe links carry a random
token (looked up here), not the address or a signature over it: the token reveals nothing and cannot be
guessed, and one-click POSTs (RFC 8058) need no login or cookie.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from outreach.errors import NotFoundError
from outreach.review.storage import AuditRow
from outreach.sending.tables import EnrollmentRow, SuppressionRow, UnsubscribeTokenRow

# Enrollments that may still hand a message to a transport (a ``sending`` one is mid-send).
LIVE_STATUSES = ("active", "waiting_review", "sending")


def normalize(email: str) -> str:
    return email.strip().lower()


def lock_enrollments(session: Session, *, email: str | None = None, account_id: str | None = None,
                     enrollment_id: int | None = None) -> list[int]:
    """Lock (``FOR UPDATE``, in id order) the live enrollments of an address, an account or one enrollment, so
    an event being recorded about them and the scheduler's hand-over of their next message are serialized.
    Returns their ids. A no-op on SQLite, where the transaction already holds the write lock."""
    conditions = []
    if email:
        conditions.append(EnrollmentRow.recipient == normalize(email))
    if account_id:
        conditions.append(EnrollmentRow.account_id == account_id)
    if enrollment_id is not None:
        conditions.append(EnrollmentRow.id == enrollment_id)
    if not conditions or session.get_bind().dialect.name != "postgresql":
        return []
    query = (select(EnrollmentRow.id).where(EnrollmentRow.status.in_(LIVE_STATUSES), or_(*conditions))
             .order_by(EnrollmentRow.id).with_for_update())
    return list(session.scalars(query))


def is_suppressed(session: Session, email: str) -> SuppressionRow | None:
    return session.get(SuppressionRow, normalize(email))


def suppress(session: Session, email: str, reason: str, now: datetime, *, source: str | None = None,
             actor: str = "system") -> bool:
    """Add an address to the list (idempotent). Returns True when it was not there before."""
    address = normalize(email)
    lock_enrollments(session, email=address)
    if session.get(SuppressionRow, address) is not None:
        return False
    session.add(SuppressionRow(email=address, reason=reason, source=source, created_at=now))
    session.add(AuditRow(at=now, actor=actor, action="suppression.add", entity="suppression", entity_id=address,
                         before=None, after={"reason": reason, "source": source}))
    session.flush()
    return True


def token_for(session: Session, email: str, list_id: str, now: datetime) -> str:
    """The recipient's token for a list, created on first use (one per recipient and list)."""
    address = normalize(email)
    row = session.scalar(
        select(UnsubscribeTokenRow).where(UnsubscribeTokenRow.email == address, UnsubscribeTokenRow.list_id == list_id)
    )
    if row is not None:
        return row.token
    token = secrets.token_urlsafe(32)
    session.add(UnsubscribeTokenRow(token=token, email=address, list_id=list_id, created_at=now))
    session.flush()
    return token


def tokens_for(session: Session, pairs: set[tuple[str, str]], now: datetime) -> dict[tuple[str, str], str]:
    """:func:`token_for` for many (email, list) pairs at once: the missing ones created in one statement (a
    pair another writer creates at the same moment keeps that writer's token). Keys are normalized emails."""
    wanted = {(normalize(email), list_id) for email, list_id in pairs}
    emails = sorted({email for email, _ in wanted})

    def existing() -> dict[tuple[str, str], str]:
        rows = session.execute(select(UnsubscribeTokenRow.email, UnsubscribeTokenRow.list_id, UnsubscribeTokenRow.token)
                               .where(UnsubscribeTokenRow.email.in_(emails)))
        return {(email, list_id): token for email, list_id, token in rows if (email, list_id) in wanted}

    found = existing() if emails else {}
    missing = sorted(wanted - set(found))
    if missing:
        from sqlalchemy.dialects import postgresql, sqlite

        rows = [{"token": secrets.token_urlsafe(32), "email": email, "list_id": list_id, "created_at": now}
                for email, list_id in missing]
        postgres = session.get_bind().dialect.name == "postgresql"
        insert = postgresql.insert(UnsubscribeTokenRow) if postgres else sqlite.insert(UnsubscribeTokenRow)
        session.execute(insert.values(rows).on_conflict_do_nothing())
        found = existing()
    return found


def lookup(session: Session, token: str) -> UnsubscribeTokenRow:
    row = session.get(UnsubscribeTokenRow, token) if token else None
    if row is None:
        raise NotFoundError("this unsubscribe link is not valid", hint="reply to the email with 'unsubscribe'")
    return row


def unsubscribe(session: Session, token: str, now: datetime, *, via: str) -> UnsubscribeTokenRow:
    """Unsubscribe the token's recipient from everything (the list id is kept as the source)."""
    row = lookup(session, token)
    suppress(session, row.email, "unsubscribe", now, source=f"{via}:{row.list_id}", actor=row.email)
    if row.used_at is None:
        row.used_at = now
    return row
