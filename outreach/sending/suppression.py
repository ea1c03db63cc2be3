"""The suppression list and unsubscribe tokens: once someone opts out, nothing reaches them again.

The scheduler checks the list inside the same transaction that claims a step, so an unsubscribe that lands a
second before a follow-up is due stops it, for every sequence and motion. Unsubscribe links carry a random
token (looked up here), not the address or a signature over it: the token reveals nothing and cannot be
guessed, and one-click POSTs (RFC 8058) need no login or cookie.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.errors import NotFoundError
from outreach.review.storage import AuditRow
from outreach.sending.tables import SuppressionRow, UnsubscribeTokenRow


def normalize(email: str) -> str:
    return email.strip().lower()


def is_suppressed(session: Session, email: str) -> SuppressionRow | None:
    return session.get(SuppressionRow, normalize(email))


def suppress(session: Session, email: str, reason: str, now: datetime, *, source: str | None = None,
             actor: str = "system") -> bool:
    """Add an address to the list (idempotent). Returns True when it was not there before."""
    address = normalize(email)
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
