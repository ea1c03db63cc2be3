"""Sequences and sending: enrollments, the outbox, suppressions, unsubscribe tokens and mail events.

Why: approved drafts now go out through sequences. The scheduler claims ``sequence_enrollments`` rows
(indexed by status and due time); the ``outbox`` row for each (enrollment, step) is committed before the
message is handed to a transport, and its unique ``idempotency_key`` is what makes a crash unable to send a
step twice. ``suppressions`` and ``unsubscribe_tokens`` make an unsubscribe effective for every sequence at
once; ``mail_events`` holds replies, bounces, meetings and conversions read right before each send.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sequence_enrollments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sequence_id", sa.String(200), nullable=False),
        sa.Column("draft_id", sa.Integer(), sa.ForeignKey("drafts.id"), nullable=True, unique=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("motion", sa.String(20), nullable=False),
        sa.Column("data_dir", sa.Text(), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.String(300), nullable=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("friction_id", sa.String(200), nullable=True),
        sa.Column("offer_id", sa.String(200), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("next_due_at", TS, nullable=True),
        sa.Column("pending_draft_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("last_message_id", sa.String(300), nullable=True),
        sa.Column("thread_references", sa.JSON(), nullable=False),
        sa.Column("thread_subject", sa.String(500), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("exit_reason", sa.String(30), nullable=True),
        sa.Column("exit_detail", sa.Text(), nullable=True),
        sa.Column("exited_at", TS, nullable=True),
        sa.Column("enrolled_by", sa.String(320), nullable=False),
        sa.Column("enrolled_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_enrollments_due", "sequence_enrollments", ["status", "next_due_at"])
    op.create_index("ix_sequence_enrollments_account_id", "sequence_enrollments", ["account_id"])
    op.create_index("ix_sequence_enrollments_recipient", "sequence_enrollments", ["recipient"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column(
            "enrollment_id",
            sa.Integer(),
            sa.ForeignKey("sequence_enrollments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=True, unique=True),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("transport", sa.String(20), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_enrollment_id", "outbox", ["enrollment_id"])
    op.create_index("ix_outbox_account_sent", "outbox", ["account_id", "sent_at"])
    op.create_index("ix_outbox_sender_sent", "outbox", ["sender", "sent_at"])

    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "unsubscribe_tokens",
        sa.Column("token", sa.String(100), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("list_id", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.UniqueConstraint("email", "list_id", name="uq_unsubscribe_tokens_email_list"),
    )
    op.create_table(
        "mail_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("offer_id", sa.String(200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index("ix_mail_events_account", "mail_events", ["account_id", "occurred_at"])
    op.create_index("ix_mail_events_email", "mail_events", ["email"])
    op.create_index("ix_mail_events_enrollment_id", "mail_events", ["enrollment_id"])


def downgrade() -> None:
    op.drop_table("mail_events")
    op.drop_table("unsubscribe_tokens")
    op.drop_table("suppressions")
    op.drop_table("outbox")
    op.drop_table("sequence_enrollments")
