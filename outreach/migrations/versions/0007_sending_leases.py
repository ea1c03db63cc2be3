"""Sending you can leave running: per-step leases, the step's original due time, outbox attempts and states.

Why: a worker now claims each due step with a lease (``lease_token``/``lease_until``) in a short transaction
and does the slow work outside it, so a crashed or slow worker's steps simply become claimable again when
their lease ends, and a reply can be recorded while a pass runs. ``step_due_at`` keeps the time the step
became due by the schedule (retries and crash recovery move only ``next_due_at``), so the stale guard measures
from it. An outbox row is written right before its one message is handed over, with its own lease, a count of
attempts and the time of the last one; a send that certainly did not go out is retried (``retry``) instead of
being stuck, and the old ``held`` state (outcome unknown) is renamed ``unknown`` to say what it means.

Revision ID: 0007_sending_leases
Revises: 0006_drafting_user_names
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sending_leases"
down_revision: str | None = "0006_drafting_user_names"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sequence_enrollments") as batch:
        batch.add_column(sa.Column("step_due_at", TS, nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
    op.execute("UPDATE sequence_enrollments SET step_due_at = next_due_at")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("attempted_at", TS, nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
    op.execute("UPDATE outbox SET attempted_at = created_at, attempts = 1 WHERE kind = 'email'")
    op.execute("UPDATE outbox SET state = 'unknown' WHERE state = 'held'")
    op.create_index("ix_outbox_state", "outbox", ["state"])
    op.create_index("ix_outbox_sender_attempted", "outbox", ["sender", "attempted_at"])
    op.create_index("ix_outbox_attempted", "outbox", ["attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_attempted", table_name="outbox")
    op.drop_index("ix_outbox_sender_attempted", table_name="outbox")
    op.drop_index("ix_outbox_state", table_name="outbox")
    op.execute("UPDATE outbox SET state = 'held' WHERE state = 'unknown'")
    op.execute("UPDATE outbox SET state = 'failed' WHERE state IN ('retry', 'bounced')")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_token")
        batch.drop_column("attempted_at")
        batch.drop_column("attempts")
    with op.batch_alter_table("sequence_enrollments") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_token")
        batch.drop_column("step_due_at")
