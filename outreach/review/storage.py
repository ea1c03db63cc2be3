"""The tables behind the review queue, as typed SQLAlchemy 2 models.

What a rep needs to trust a draft in seconds is stored next to it: the account as it was when the draft was
made, each friction with its figures, and the evidence rows behind them. Drafts keep every version (the
model's, each SDR edit, each regeneration) so edits can be diffed against the model's text; review actions
record what each reviewer did; the audit log is append-only (database triggers refuse UPDATE and DELETE) and
stores before/after for every change.

The schema itself is owned by the Alembic migrations in :mod:`outreach.migrations`; these models must match
them (a test compares the two).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outreach.schema import Base

OPEN_STATUSES = ("pending_review", "approved", "scheduled")
# A draft a reviewer approved (whether or not it has gone out yet): what approval rates count.
APPROVED_STATUSES = ("approved", "scheduled", "sent")


class AccountRow(Base):
    """The account as last seen by an enqueue run: owner, name and the full account record."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    plan: Mapped[str] = mapped_column(String(200))
    owner_email: Mapped[str | None] = mapped_column(String(320), index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class DraftRow(Base):
    """One email in the review queue for one (account, motion); its text lives in :class:`DraftVersionRow`."""

    __tablename__ = "drafts"
    __table_args__ = (
        Index("ix_drafts_status_updated", "status", "updated_at"),
        Index("ix_drafts_owner_status_updated", "owner_email", "status", "updated_at"),
        Index("ix_drafts_trigger_status_updated", "trigger", "status", "updated_at"),
        Index("ix_drafts_motion_status_updated", "motion", "status", "updated_at"),
        Index("ix_drafts_updated", "updated_at", "id"),
        Index("ix_drafts_status_priority", "status", "priority", "id"),
        Index("ix_drafts_status_created", "status", "created_at", "id"),
        Index("ix_drafts_priority", "priority", "id"),
        Index("ix_drafts_owner_status_priority", "owner_email", "status", "priority", "id"),
        Index("ix_drafts_motion_status_priority", "motion", "status", "priority", "id"),
        Index("ix_drafts_trigger_status_priority", "trigger", "status", "priority", "id"),
        Index("ix_drafts_snoozed_until", "snoozed_until"),
        # One open draft per account and motion: a second trigger merges instead of making a second email.
        Index(
            "uq_drafts_open_account_motion",
            "account_id",
            "motion",
            unique=True,
            sqlite_where=text("status IN ('pending_review', 'approved', 'scheduled')"),
            postgresql_where=text("status IN ('pending_review', 'approved', 'scheduled')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    motion: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="pending_review")
    owner_email: Mapped[str | None] = mapped_column(String(320))
    version: Mapped[int] = mapped_column(Integer, default=1)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    as_of: Mapped[date] = mapped_column(Date)
    offer_id: Mapped[str | None] = mapped_column(String(200))
    offer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    health: Mapped[dict[str, Any]] = mapped_column(JSON)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(500), default="")
    quality: Mapped[str] = mapped_column(String(20), default="ok")
    reject_reason: Mapped[str | None] = mapped_column(String(30))
    reject_text: Mapped[str | None] = mapped_column(Text)
    expired_reason: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Sort keys of the queue (migration 0008): primary friction strength × account MRR, and copies of the
    # account's MRR, health score and the offer's price, so the queue sorts in SQL.
    priority: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    account_mrr: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    health_score: Mapped[int | None] = mapped_column(Integer)
    offer_price: Mapped[float | None] = mapped_column(Float)
    snoozed_until: Mapped[datetime | None]

    versions: Mapped[list[DraftVersionRow]] = relationship(
        back_populates="draft", order_by="DraftVersionRow.number", cascade="all, delete-orphan"
    )
    frictions: Mapped[list[FrictionRow]] = relationship(
        back_populates="draft", order_by="FrictionRow.position", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it as declared


class DraftVersionRow(Base):
    """One text of a draft: the model's, an SDR edit, or a regeneration. Never updated once written."""

    __tablename__ = "draft_versions"
    __table_args__ = (UniqueConstraint("draft_id", "number", name="uq_draft_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    author: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    call_to_action: Mapped[str] = mapped_column(Text, default="")
    friction_ids: Mapped[list[Any]] = mapped_column(JSON)
    offer_id: Mapped[str | None] = mapped_column(String(200))
    template_name: Mapped[str | None] = mapped_column(String(200))
    template_version: Mapped[str | None] = mapped_column(String(50))
    template_hash: Mapped[str | None] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(200))
    quality: Mapped[str] = mapped_column(String(20), default="ok")
    issues: Mapped[list[Any]] = mapped_column(JSON)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    instructions: Mapped[str | None] = mapped_column(Text)
    diff: Mapped[str | None] = mapped_column(Text)
    edit_distance: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    draft: Mapped[DraftRow] = relationship(back_populates="versions")


class FrictionRow(Base):
    """A friction statement the draft rests on, with the figures it quotes."""

    __tablename__ = "frictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    friction_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    motion: Mapped[str] = mapped_column(String(20))
    statement: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    window_days: Mapped[int | None] = mapped_column(Integer)
    strength: Mapped[float] = mapped_column(Float, default=0.0)

    draft: Mapped[DraftRow] = relationship(back_populates="frictions")
    evidence: Mapped[list[EvidenceRow]] = relationship(
        back_populates="friction", order_by="EvidenceRow.position", cascade="all, delete-orphan"
    )


class EvidenceRow(Base):
    """One event or ticket behind a friction, as it was in the data when the draft was made."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    friction_row_id: Mapped[int] = mapped_column(ForeignKey("frictions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    friction: Mapped[FrictionRow] = relationship(back_populates="evidence")


class ReviewActionRow(Base):
    """What a reviewer (or the system) did to a draft: the timeline on the detail page."""

    __tablename__ = "review_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    reason_code: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    draft_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]


class AuditRow(Base):
    """Append-only: who changed what, when, with the record before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UserRow(Base):
    """A person who can log in. ``password_hash`` is an argon2id hash, never the password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    title: Mapped[str | None] = mapped_column(String(200), default=None)


class ApiTokenRow(Base):
    """An API token for integrations. Only a SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    user: Mapped[UserRow] = relationship()


class WebSessionRow(Base):
    """One login in the web app (migration 0008). The cookie holds a random secret; ``id`` is its SHA-256, so
    a copy of this table opens no session. Logout, a password or role change and deactivation set
    ``revoked_at``; the idle and absolute timeouts are checked on every request."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(300))
