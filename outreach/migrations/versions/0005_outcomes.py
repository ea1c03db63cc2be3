"""Expansion outcomes: upgrades, seat adds, add-on purchases, contractions and churn.

Why: the measurement side of expansion (issue #7). Every outcome keeps its mechanism (``type``: upgrade,
seat_add, addon_purchase, contraction, downgrade, churn), the account, the offer it bought and the signed MRR
change, so upsell and cross-sell can be told apart and NRR/GRR computed. Attribution to a draft or
enrollment is *not* stored: it depends on the attribution window, so :mod:`outreach.metrics.report` derives it at
report time from the sends. ``external_id`` is unique so re-ingesting a file or re-posting to the API is
harmless; the (account, date) and (kind, date) indexes serve the per-account MRR walk and period queries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("offer_id", sa.String(200), nullable=True),
        sa.Column("mrr_delta", sa.Float(), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outcomes_account_date", "outcomes", ["account_id", "occurred_on"])
    op.create_index("ix_outcomes_kind_date", "outcomes", ["kind", "occurred_on"])


def downgrade() -> None:
    op.drop_table("outcomes")
