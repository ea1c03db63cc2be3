"""Users get a display name and a job title, so drafts are signed by the account's owner.

Why: an expansion email should read as a note from the rep who owns the account (issue #13), so the drafter
signs with the owner's name and title; the catalog's sender is only the fallback for accounts whose owner
has no user record. Both columns are nullable: existing logins keep working unchanged.

Revision ID: 0006_drafting_user_names
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_drafting_user_names"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("title", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("title")
        batch.drop_column("name")
