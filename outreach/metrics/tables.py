"""The table behind expansion metrics (migration 0005 creates it): one row per MRR change of an account."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from outreach.schema import Base


class OutcomeRow(Base):
    """One MRR change of one account (migration 0005). ``mrr_delta`` is signed; NULL only for a full churn."""

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_account_date", "account_id", "occurred_on"),
        Index("ix_outcomes_kind_date", "kind", "occurred_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(200))
    offer_id: Mapped[str | None] = mapped_column(String(200))
    mrr_delta: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))  # migration 0008; None = the account's currency
    occurred_on: Mapped[date] = mapped_column(Date)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime]
