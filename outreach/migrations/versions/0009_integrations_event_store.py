"""Event store inbox, intake keys, notifications outbox, account states and collector cursors.

Why: real data in and out (issue #18). ``stored_events`` / ``event_users`` / ``stored_files`` hold events that
come through the Segment-compatible API (on PostgreSQL: every stored event) and what ``group`` calls say;
``intake_keys`` the API's write key (hashed); ``notifications`` is the outbox for Slack, the CRM and outbound
webhooks, so an outage never blocks approve or send; ``account_states`` lets the intake tell "became ready"
from "still ready"; ``integration_cursors`` how far the collectors read.

Revision ID: 0009_integrations
Revises: 0008_review_web_sessions
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_integrations"
down_revision: str | None = "0008_review_web_sessions"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stored_events",
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(400), nullable=True, unique=True),
        sa.Column("message_id", sa.String(400), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("event", sa.String(400), nullable=True),
        sa.Column("user_id", sa.String(400), nullable=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("props", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_stored_events_user", "stored_events", ["user_id"])
    op.create_index("ix_stored_events_account_id", "stored_events", ["account_id"])
    op.create_table(
        "event_users",
        sa.Column("user_id", sa.String(400), primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("grouped_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
    )
    op.create_table(
        "intake_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prefix", sa.String(20), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
    )
    op.create_index("ix_notifications_state", "notifications", ["state", "id"])
    op.create_index("ix_notifications_account_id", "notifications", ["account_id"])
    op.create_index("ix_notifications_draft_id", "notifications", ["draft_id"])
    op.create_table(
        "account_states",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("data_dir", sa.String(1000), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("cohort", sa.String(20), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.UniqueConstraint("data_dir", "account_id", name="uq_account_states_account"),
    )
    op.create_table(
        "integration_cursors",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("integration_cursors", "account_states", "notifications", "intake_keys", "stored_files",
                  "event_users", "stored_events"):
        op.drop_table(table)
