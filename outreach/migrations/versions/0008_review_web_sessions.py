"""Server-side web sessions, token expiry, queue sort/snooze columns and outcome currencies.

Why: issue 17. A signed cookie alone cannot be ended (logout, password or role change, deactivation), so
logins become rows that can be revoked; API tokens get an expiry; the queue sorts by priority (friction
strength × MRR), account MRR, health and offer price in SQL and hides snoozed drafts, so those values become
columns (backfilled from the JSON already stored with each draft); outcomes carry their currency.

Revision ID: 0008_review_web_sessions
Revises: 0007_sending_leases
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008_review_web_sessions"
down_revision: str | None = "0007_sending_leases"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
TOKEN_DAYS = 90


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(50), nullable=True),
        sa.Column("address", sa.String(100), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("priority", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("account_mrr", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("health_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("offer_price", sa.Float(), nullable=True))
        batch.add_column(sa.Column("snoozed_until", TS, nullable=True))
    # The default order (priority, then id) for each filter the queue page offers, as 0003 did for updated_at.
    op.create_index("ix_drafts_status_priority", "drafts", ["status", "priority", "id"])
    op.create_index("ix_drafts_status_created", "drafts", ["status", "created_at", "id"])
    op.create_index("ix_drafts_priority", "drafts", ["priority", "id"])
    op.create_index("ix_drafts_owner_status_priority", "drafts", ["owner_email", "status", "priority", "id"])
    op.create_index("ix_drafts_motion_status_priority", "drafts", ["motion", "status", "priority", "id"])
    op.create_index("ix_drafts_trigger_status_priority", "drafts", ["trigger", "status", "priority", "id"])
    op.create_index("ix_drafts_snoozed_until", "drafts", ["snoozed_until"])  # the few snoozed drafts, counted per page
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=True))

    bind = op.get_bind()
    tokens = sa.table("api_tokens", sa.column("id", sa.Integer()), sa.column("created_at", TS),
                      sa.column("expires_at", TS))
    for token_id, created in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(tokens.update().where(tokens.c.id == token_id)
                     .values(expires_at=created + timedelta(days=TOKEN_DAYS)))
    drafts = sa.table("drafts", sa.column("id", sa.Integer()), sa.column("decision", sa.JSON()),
                      sa.column("health", sa.JSON()), sa.column("offer", sa.JSON()),
                      sa.column("priority", sa.Float()), sa.column("account_mrr", sa.Float()),
                      sa.column("health_score", sa.Integer()), sa.column("offer_price", sa.Float()))
    rows = bind.execute(sa.select(drafts.c.id, drafts.c.decision, drafts.c.health, drafts.c.offer)).all()
    for draft_id, decision, health, offer in rows:
        decision, health, offer = decision or {}, health or {}, offer or {}
        mrr = _number((decision.get("account") or {}).get("mrr")) or 0.0
        strengths = [_number(f.get("strength")) or 0.0 for f in decision.get("frictions") or []]
        score = _number(health.get("score"))
        bind.execute(drafts.update().where(drafts.c.id == draft_id).values(
            priority=round(max(strengths, default=0.0) * mrr, 4), account_mrr=mrr,
            health_score=int(score) if score is not None else None, offer_price=_number(offer.get("price_monthly")),
        ))


def downgrade() -> None:
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("currency")
    for index in ("ix_drafts_snoozed_until", "ix_drafts_trigger_status_priority", "ix_drafts_motion_status_priority",
                  "ix_drafts_owner_status_priority", "ix_drafts_priority", "ix_drafts_status_created",
                  "ix_drafts_status_priority"):
        op.drop_index(index, table_name="drafts")
    with op.batch_alter_table("drafts") as batch:
        for name in ("snoozed_until", "offer_price", "health_score", "account_mrr", "priority"):
            batch.drop_column(name)
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    op.drop_table("web_sessions")
