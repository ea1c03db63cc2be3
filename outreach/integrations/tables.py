"""The integrations' tables (migration 0009_integrations creates them).

- ``intake_keys``: the workspace's write key for the Segment-compatible API. Only a SHA-256 of it is stored;
  the key is shown once, when ``outreach intake key`` creates it. One is active at a time.
- ``notifications``: the outbox of everything sent to other systems (Slack, the CRM, the outbound webhook). A row
  is written in its own transaction after the action it reports has committed, and delivered after that, so a
  Slack or CRM outage never blocks an approval or a send; ``dedup_key`` is unique, so collecting the same
  approval twice sends one message. Failures stay visible (``state`` failed, ``last_error``) until retried.
- ``account_states``: each account's cohort the last time the intake re-decided it, so "became ready" can be
  told from "still ready".
- ``integration_cursors``: how far a collector has read (e.g. the audit log for approvals and sends).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from outreach.schema import Base


class IntakeKeyRow(Base):
    """A write key for /v1/*: HTTP Basic username (Segment's convention)."""

    __tablename__ = "intake_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class NotificationRow(Base):
    """One message to one outside system about one thing that happened."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(20))  # slack | hubspot | salesforce | webhook
    kind: Mapped[str] = mapped_column(String(20))  # ready | approved | sent | held | reply
    account_id: Mapped[str | None] = mapped_column(String(200), index=True)
    draft_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | failed | skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class AccountStateRow(Base):
    """An account's cohort when last decided by the intake."""

    __tablename__ = "account_states"
    __table_args__ = (UniqueConstraint("data_dir", "account_id", name="uq_account_states_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_dir: Mapped[str] = mapped_column(String(1000))
    account_id: Mapped[str] = mapped_column(String(200))
    cohort: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime]


class IntegrationCursorRow(Base):
    """How far a collector has read."""

    __tablename__ = "integration_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
