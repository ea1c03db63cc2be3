"""A/B tests of prompt versions in production: who gets which version, who is held out, and how each did.

Assignment is a pure function of (experiment id, account id) — a salted SHA-256 bucket — so the same account
always lands in the same arm on every run, machine and process, without storing anything. A ``control_pct``
share of accounts is held out: the engine's gate blocks them (rule ``held_out``), so they are never drafted,
queued or contacted, and their outcomes are the baseline lift is measured against. Because the gate runs
before the offer (and so the template) is known, an account in the control share of any running experiment
is held out from all outreach, which errs on the side of not contacting it.

Results come from the review queue's own tables: every draft's first version records the template name,
version and hash, and the draft's status, rejection reason and SDR edits say how reviewers received it.
Rates carry Wilson score intervals and read "not enough data yet" below the split's minimum sample.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.drafting.registry import DEFAULT_LABEL, Registry, Split
from outreach.drafting.routing import CONTROL, assign
from outreach.engine.data import Account
from outreach.review.storage import APPROVED_STATUSES, DraftRow, DraftVersionRow
from outreach.sending.tables import EnrollmentRow, MailEventRow

DEFAULT_MIN_SAMPLE = 30


# ------------------------------------------------------------------------------------------------ results


class Rate(BaseModel):
    """A proportion with its 95% Wilson score interval; ``enough`` is false below the minimum sample."""

    successes: int
    trials: int
    value: float | None
    low: float | None
    high: float | None
    enough: bool

    def text(self) -> str:
        if self.trials == 0 or self.value is None:
            return "no data yet"
        shown = f"{self.value:.0%} [{self.low:.0%}–{self.high:.0%}] ({self.successes}/{self.trials})"
        return shown if self.enough else f"not enough data yet ({self.successes}/{self.trials})"


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval: honest at small n and near 0 or 1, unlike the normal approximation."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def rate(successes: int, trials: int, min_sample: int) -> Rate:
    interval = wilson(successes, trials)
    return Rate(
        successes=successes, trials=trials, value=successes / trials if trials else None,
        low=interval[0] if interval else None, high=interval[1] if interval else None,
        enough=trials >= min_sample,
    )


class VersionStats(BaseModel):
    """How one template version did in the review queue (and after sending, where that is recorded)."""

    template: str
    version: str
    hashes: list[str] = Field(description="Template file hashes seen for this version (more than one is a red flag).")
    arm_weight: int | None = None
    drafts: int
    pending: int
    approved: int
    rejected: int
    expired: int
    sent: int
    approval: Rate = Field(description="Approved (incl. scheduled/sent) out of approved + rejected.")
    edited_share: Rate = Field(description="Approved drafts an SDR edited before approving.")
    mean_edit_distance: float | None = Field(description="Over approved drafts; 0 for approved as written.")
    rejection_reasons: dict[str, int]
    send: Rate = Field(description="Sent out of drafts.")
    reply: Rate | None = Field(description="Replied out of sent; None until replies are recorded.")
    conversion: Rate | None = Field(description="Converted out of sent; None until conversions are recorded.")


class ExperimentReport(BaseModel):
    template: str
    label: str | None
    split: Split | None
    control_accounts: int | None = Field(default=None, description="Accounts held out (with a dataset).")
    arms: list[VersionStats]
    outcome_source: Literal["queue", "queue+replies"]


def _draft_ids_with(session: Session, kinds: Sequence[str]) -> set[int]:
    """Drafts whose sequence enrollment received a recipient event of one of ``kinds`` (reply, conversion…).

    Events are tied to an enrollment when the reply poller matched them by Message-ID or an ingested event
    named the enrollment; events known only by account are not credited to a prompt version.
    """
    rows = session.execute(
        select(EnrollmentRow.draft_id)
        .join(MailEventRow, MailEventRow.enrollment_id == EnrollmentRow.id)
        .where(MailEventRow.kind.in_(list(kinds)), EnrollmentRow.draft_id.is_not(None))
        .distinct()
    )
    return {int(row[0]) for row in rows if row[0] is not None}


def version_stats(
    factory: sessionmaker[Session],
    name: str,
    *,
    versions: Sequence[str] | None = None,
    min_sample: int = DEFAULT_MIN_SAMPLE,
    split: Split | None = None,
) -> tuple[list[VersionStats], Literal["queue", "queue+replies"]]:
    """Per-version results of template ``name`` from the queue tables (attributed by each draft's first,
    model-written version)."""
    with factory() as session:
        first = (
            select(DraftVersionRow.draft_id, DraftVersionRow.template_version, DraftVersionRow.template_hash,
                   DraftRow.status, DraftRow.reject_reason)
            .join(DraftRow, DraftRow.id == DraftVersionRow.draft_id)
            .where(DraftVersionRow.template_name == name, DraftVersionRow.number == 1)
        )
        drafts = session.execute(first).all()
        ids = [int(row[0]) for row in drafts]
        last_edit: dict[int, int] = {}
        if ids:
            edits = session.execute(
                select(DraftVersionRow.draft_id, DraftVersionRow.number, DraftVersionRow.edit_distance)
                .where(DraftVersionRow.source == "edit", DraftVersionRow.draft_id.in_(ids))
                .order_by(DraftVersionRow.draft_id, DraftVersionRow.number)
            ).all()
            for draft_id, _number, distance in edits:
                last_edit[int(draft_id)] = int(distance or 0)
        replies = _draft_ids_with(session, ["reply"])
        conversions = _draft_ids_with(session, ["conversion", "meeting"])

    grouped: dict[str, list[tuple[int, str | None, str, str | None]]] = defaultdict(list)
    for draft_id, version, digest, status, reason in drafts:
        grouped[str(version)].append((int(draft_id), digest, str(status), reason))
    wanted = list(versions) if versions is not None else sorted(grouped, key=lambda v: (not v.isdigit(), v.zfill(8)))
    stats = []
    for version in wanted:
        rows = grouped.get(version, [])
        statuses = Counter(status for _, _, status, _ in rows)
        approved_ids = [d for d, _, status, _ in rows if status in APPROVED_STATUSES]
        approved = len(approved_ids)
        rejected = statuses["rejected"]
        sent_ids = {d for d, _, status, _ in rows if status == "sent"}
        distances = [last_edit.get(d, 0) for d in approved_ids]
        edited = sum(1 for d in approved_ids if d in last_edit)
        stats.append(VersionStats(
            template=name, version=version,
            hashes=sorted({digest for _, digest, _, _ in rows if digest}),
            arm_weight=split.weights.get(version) if split else None,
            drafts=len(rows), pending=statuses["pending_review"], approved=approved, rejected=rejected,
            expired=statuses["expired"], sent=len(sent_ids),
            approval=rate(approved, approved + rejected, min_sample),
            edited_share=rate(edited, approved, min_sample),
            mean_edit_distance=sum(distances) / len(distances) if distances else None,
            rejection_reasons=dict(Counter(reason or "unspecified" for _, _, s, reason in rows if s == "rejected")
                                   .most_common()),
            send=rate(len(sent_ids), len(rows), min_sample),
            reply=rate(len(sent_ids & replies), len(sent_ids), min_sample),
            conversion=rate(len(sent_ids & conversions), len(sent_ids), min_sample),
        ))
    return stats, "queue+replies"


def experiment_report(
    factory: sessionmaker[Session],
    registry: Registry,
    name: str,
    *,
    label: str = DEFAULT_LABEL,
    accounts: Sequence[Account] = (),
) -> ExperimentReport:
    """The A/B view of one template: its split on ``label`` (if any), each arm's results, the control size."""
    split = registry.split(name, label) if name in registry.data.templates else None
    versions = sorted(split.weights, key=int) if split else None
    arms, source = version_stats(factory, name, versions=versions,
                                 min_sample=split.min_sample if split else DEFAULT_MIN_SAMPLE, split=split)
    control = None
    if split is not None and accounts:
        control = sum(1 for account in accounts if assign(split, account.account_id) == CONTROL)
    return ExperimentReport(template=name, label=label if split else None, split=split, control_accounts=control,
                            arms=arms, outcome_source=source)
