"""Indexes for the queue page's filters and counts at 100k drafts.

Why: benchmarks/bench_queue.py showed the motion and trigger filters and the all-statuses view scanning and
sorting the whole drafts table on SQLite (p95 up to 180 ms at 100k drafts). Each filter now has an index
that starts with its column and covers the status count and the newest-first order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_index("ix_drafts_trigger", table_name="drafts")
    op.create_index("ix_drafts_trigger_status_updated", "drafts", ["trigger", "status", "updated_at"])
    op.create_index("ix_drafts_motion_status_updated", "drafts", ["motion", "status", "updated_at"])
    op.create_index("ix_drafts_updated", "drafts", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_drafts_updated", table_name="drafts")
    op.drop_index("ix_drafts_motion_status_updated", table_name="drafts")
    op.drop_index("ix_drafts_trigger_status_updated", table_name="drafts")
    op.create_index("ix_drafts_trigger", "drafts", ["trigger"])
