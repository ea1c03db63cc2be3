"""Expansion outcomes and their attribution to the outreach that preceded them.

An outcome is one change to an account's MRR with its mechanism:

- expansion: ``upgrade`` (a higher plan), ``seat_add`` (a seat pack), ``addon_purchase`` (an add-on or bundle);
- contraction: ``contraction`` or ``downgrade`` (MRR goes down, the account stays);
- churn: ``churn`` (the account leaves; without ``mrr_delta`` all of its remaining MRR is lost).

Outcomes arrive through ``outreach events ingest FILE`` (mixed with mail events, told apart by ``kind``) or
``POST /api/outcomes``, and are stored once (``external_id`` is unique).

Attribution is derived, not stored, because it depends on the window: an expansion is attributed to the
latest *touch* — a draft of ours that was sent (its first send) — for the same account whose offer it
matches, sent on or before the expansion date and no more than ``window_days`` (default 60) before it.
"Matches" means the same offer id; an expansion without an offer id matches a touch whose offer kind fits
the mechanism (upgrade → plan, seat_add → seat pack, addon_purchase → add-on or bundle). An expansion with no
matching touch is organic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.metrics.tables import OutcomeRow
from outreach.settings import Settings

OutcomeType = Literal["expansion", "upgrade", "seat_add", "addon_purchase", "contraction", "downgrade", "churn"]
OutcomeKind = Literal["expansion", "contraction", "churn"]
OUTCOME_TYPES: tuple[str, ...] = ("expansion", "upgrade", "seat_add", "addon_purchase", "contraction", "downgrade",
                                  "churn")
KIND_OF: dict[str, OutcomeKind] = {
    "upgrade": "expansion", "seat_add": "expansion", "addon_purchase": "expansion",
    "contraction": "contraction", "downgrade": "contraction", "churn": "churn",
}
# Which offer kinds (outreach.engine.offers.Offer.kind) an expansion mechanism can be the purchase of.
OFFER_KINDS_FOR: dict[str, tuple[str, ...]] = {
    "upgrade": ("plan",), "seat_add": ("seat_pack",), "addon_purchase": ("addon", "bundle"),
}
# The motion an organic expansion counts under (no offer of ours to read it from).
MOTION_FOR_TYPE: dict[str, str] = {"upgrade": "upsell", "seat_add": "upsell", "addon_purchase": "cross_sell"}
DEFAULT_WINDOW_DAYS: int = Settings.model_fields["attribution_window_days"].default


class OutcomeEvent(BaseModel):
    """One outcome as ingested (docs/metrics.md). ``kind`` names the mechanism; the generic ``expansion`` must
    say which one in ``detail.type`` (upgrade, seat_add or addon_purchase)."""

    model_config = ConfigDict(extra="forbid")

    kind: OutcomeType
    account_id: str = Field(min_length=1, max_length=200)
    occurred_at: date = Field(description="The date the change took effect (a timestamp's date is used).")
    offer_id: str | None = Field(default=None, max_length=200, description="The catalog id bought or dropped.")
    mrr_delta: float | None = Field(default=None, description="MRR change; sign is taken from the kind.")
    external_id: str | None = Field(default=None, max_length=400)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$",
                                 description="ISO 4217 code of mrr_delta; default the account's currency.")
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _date_of_timestamp(cls, data: Any) -> Any:
        if isinstance(data, dict):
            value = data.get("occurred_at", data.get("date"))
            data = {k: v for k, v in data.items() if k != "date"}
            if isinstance(value, str) and len(value) > 10:
                with contextlib.suppress(ValueError):
                    value = datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
            if value is not None:
                data["occurred_at"] = value
        return data

    @model_validator(mode="after")
    def _check_amount(self) -> OutcomeEvent:
        if self.kind != "churn" and self.mrr_delta is None:
            raise ValueError(f"mrr_delta is required for a {self.kind}")
        if self.kind == "expansion" and self.detail.get("type") not in OFFER_KINDS_FOR:
            raise ValueError("an expansion needs detail.type: upgrade, seat_add or addon_purchase")
        if self.mrr_delta is not None and self.mrr_delta == 0:
            raise ValueError("mrr_delta must not be 0")
        if self.kind in ("upgrade", "seat_add", "addon_purchase", "expansion") and (self.mrr_delta or 0) < 0:
            raise ValueError(f"an {self.kind} cannot lower MRR; record a contraction or downgrade instead")
        return self

    @property
    def mechanism(self) -> str:
        if self.kind != "expansion":
            return self.kind
        return str(self.detail["type"])

    @property
    def signed_delta(self) -> float | None:
        if self.mrr_delta is None:
            return None
        magnitude = abs(self.mrr_delta)
        return magnitude if KIND_OF[self.mechanism] == "expansion" else -magnitude

    def key(self) -> str:
        if self.external_id:
            return self.external_id
        raw = json.dumps(self.model_dump(mode="json", exclude={"detail"}), sort_keys=True)
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def is_outcome(data: Any) -> bool:
    """True for a JSON object whose ``kind`` is an outcome type (the rest are mail events)."""
    return isinstance(data, dict) and data.get("kind") in OUTCOME_TYPES


def record_outcome(session: Session, event: OutcomeEvent, now: datetime, *, source: str) -> bool:
    """Store one outcome once; False when its ``external_id`` (or content hash) is already known."""
    key = event.key()
    if session.scalar(select(OutcomeRow.id).where(OutcomeRow.external_id == key)) is not None:
        return False
    mechanism = event.mechanism
    session.add(OutcomeRow(
        external_id=key, kind=KIND_OF[mechanism], type=mechanism, account_id=event.account_id,
        offer_id=event.offer_id, mrr_delta=event.signed_delta, occurred_on=event.occurred_at, currency=event.currency,
        detail=event.detail, source=source, recorded_at=now,
    ))
    session.flush()
    return True


class OutcomeIngestReport(BaseModel):
    read: int = 0
    created: int = 0
    duplicates: int = 0


def ingest_outcomes(factory: sessionmaker[Session], events: Iterable[OutcomeEvent],
                    clock: Callable[[], datetime], *, source: str) -> OutcomeIngestReport:
    report = OutcomeIngestReport()
    with db.transaction(factory) as session:
        for event in events:
            report.read += 1
            if record_outcome(session, event, clock(), source=source):
                report.created += 1
            else:
                report.duplicates += 1
    return report


# ------------------------------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class Outcome:
    """An outcome as the metrics read it (from :class:`OutcomeRow` or built directly in tests)."""

    id: int
    account_id: str
    kind: str
    type: str
    offer_id: str | None
    mrr_delta: float | None
    occurred_on: date
    currency: str | None = None
    external_id: str = ""

    @classmethod
    def of(cls, row: OutcomeRow) -> Outcome:
        return cls(row.id, row.account_id, row.kind, row.type, row.offer_id, row.mrr_delta, row.occurred_on,
                   row.currency, row.external_id)


@dataclass(frozen=True)
class Touch:
    """One draft of ours, with where it got in the funnel. ``sent_on`` is the date of its first send."""

    draft_id: int
    account_id: str
    offer_id: str | None
    offer_kind: str | None
    motion: str
    trigger: str
    owner: str
    prompt_version: str
    created_on: date
    approved: bool
    sent_on: date | None
    replied: bool
    enrollment_id: int | None = None


def attribute(outcome: Outcome, touches: Iterable[Touch], window_days: int = DEFAULT_WINDOW_DAYS) -> Touch | None:
    """The touch an expansion is attributed to (see the module docstring), or None when it is organic."""
    if outcome.kind != "expansion":
        return None
    best: Touch | None = None
    for touch in touches:
        if touch.account_id != outcome.account_id or touch.sent_on is None:
            continue
        age = (outcome.occurred_on - touch.sent_on).days
        if age < 0 or age > window_days:
            continue
        if outcome.offer_id is not None:
            if touch.offer_id != outcome.offer_id:
                continue
        elif touch.offer_kind not in OFFER_KINDS_FOR.get(outcome.type, ()):
            continue
        if best is None or (touch.sent_on, touch.draft_id) > (best.sent_on or date.min, best.draft_id):
            best = touch
    return best


def load_outcomes(session: Session) -> list[Outcome]:
    rows = session.scalars(select(OutcomeRow).order_by(OutcomeRow.occurred_on, OutcomeRow.id))
    return [Outcome.of(row) for row in rows]
